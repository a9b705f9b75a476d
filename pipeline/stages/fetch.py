"""Stage fetch: materialize one dataset's raw data into data/raw/<name>.npz."""

from __future__ import annotations

import argparse

from pipeline.config import load_params
from pipeline.core.atomic import write_npz
from pipeline.core.errors import cli
from pipeline.data.raw import check, raw_path


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    name = parser.parse_args(argv).dataset
    raw = check(load_params().dataset(name).source.load(), name)
    write_npz(raw_path(name), **raw.arrays())
    shipped_test = f" + {len(raw.X_test)} shipped test points" if raw.X_test is not None else ""
    images = f" of {raw.image_shape[0]}x{raw.image_shape[1]} pixels" if raw.image_shape else ""
    print(f"fetch {name}: {len(raw.X)} examples{images}{shipped_test}")


if __name__ == "__main__":
    main()
