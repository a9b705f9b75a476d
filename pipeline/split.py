"""Stage split: stratified train / dev / test split of one dataset into
data/split/<name>/{train,dev,test}.npz, labels encoded as class indices."""

from __future__ import annotations

import argparse
import math

import numpy as np

from pipeline.atomic import write_npz
from pipeline.config import SplitConfig, load_params
from pipeline.datasets import SPLITS, Raw, Splits, check, load_npz, raw_path, split_path
from pipeline.errors import PipelineError, cli


def split(raw: Raw, config: SplitConfig) -> Splits:
    """Carve test (unless the source ships one) and then dev out of the data,
    and standardize the features if asked.

    dev and test are shares of the whole data set; with a shipped test set,
    dev is a share of the shipped training part.
    """
    from sklearn.model_selection import train_test_split

    classes, y = np.unique(raw.y, return_inverse=True)
    X = raw.X
    if raw.X_test is None:
        X, X_test, y, y_test = train_test_split(X, y, test_size=count(config.test, len(X)), stratify=y,
                                                random_state=config.seed)
        n_dev = count(config.dev, len(raw.X))
    else:
        unseen = np.setdiff1d(raw.y_test, classes)
        if unseen.size:
            raise PipelineError(f"the test labels {unseen.tolist()} never occur in the training data")
        X_test, y_test = raw.X_test, np.searchsorted(classes, raw.y_test)
        n_dev = count(config.dev, len(X))
    if n_dev > 0:
        X, X_dev, y, y_dev = train_test_split(X, y, test_size=n_dev, stratify=y, random_state=config.seed)
    else:
        X_dev, y_dev = X[:0], y[:0]
    if config.standardize:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(X)  # train statistics: dev and test stay unseen
        X, X_dev, X_test = (scaler.transform(part) if len(part) else part for part in (X, X_dev, X_test))
    return Splits(
        X={"train": X, "dev": X_dev, "test": X_test},
        y={"train": y, "dev": y_dev, "test": y_test},
        classes=classes,
        image_shape=raw.image_shape,
    )


def count(share: float, n: int) -> int:
    """share of n examples, rounded up as scikit-learn does, after dropping
    float noise (0.1 of 5 000 is 500, not 501)."""
    return math.ceil(round(share * n, 9))


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    name = parser.parse_args(argv).dataset
    config = load_params().dataset(name).split
    content = load_npz(raw_path(name))
    if not {"X", "y"} <= set(content):
        raise PipelineError(f"{raw_path(name)} lacks arrays X and y: rerun the fetch stage")
    raw = check(Raw.from_arrays(content), name)
    try:
        splits = split(raw, config)
    except ValueError as error:  # e.g. a class too small to stratify
        raise PipelineError(f"cannot split dataset {name}: {error}") from None
    for part in SPLITS:
        shape = {"image_shape": np.asarray(splits.image_shape)} if splits.image_shape else {}
        write_npz(split_path(name, part), X=splits.X[part], y=splits.y[part], classes=splits.classes, **shape)
    print(f"split {name}: " + ", ".join(f"{part} {len(splits.y[part])}" for part in SPLITS))


if __name__ == "__main__":
    main()
