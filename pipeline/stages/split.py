"""Stage split: stratified train / dev / test split of one dataset into
data/split/<name>/{train,dev,test}.npz, labels encoded as class indices."""

from __future__ import annotations

import argparse

from pipeline.config import load_params
from pipeline.core.errors import PipelineError, cli
from pipeline.data.raw import load_raw
from pipeline.data.splits import SPLITS, save_splits, split


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    name = parser.parse_args(argv).dataset
    config = load_params().dataset(name).split
    raw = load_raw(name)
    try:
        splits = split(raw, config)
    except ValueError as error:  # e.g. a class too small to stratify
        raise PipelineError(f"cannot split dataset {name}: {error}") from None
    save_splits(name, splits)
    print(f"split {name}: " + ", ".join(f"{part} {len(splits.y[part])}" for part in SPLITS))


if __name__ == "__main__":
    main()
