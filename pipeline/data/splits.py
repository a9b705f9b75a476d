"""A dataset's stratified train / dev / test split: its config, the split
itself, and the split files the split stage writes and the others read."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, Field, model_validator

from pipeline.core.atomic import write_npz
from pipeline.core.errors import PipelineError
from pipeline.core.schema import Schema, Seed
from pipeline.data.raw import Raw, SourceConfig, check, load_npz

SPLIT_DIR = Path("data/split")
SPLITS = ("train", "dev", "test")


def _share_or_count(size: float) -> float:
    if size >= 1 and size != int(size):
        raise ValueError("must be a share below 1 or a whole number of examples")
    return size


# Below 1: a share of the data set; 1 or more: a number of examples.
Size = Annotated[float, Field(ge=0), AfterValidator(_share_or_count)]


class SplitConfig(Schema):
    """How much of the data is held out for dev (tuning, early stopping) and
    test: each a share of the whole data set (0.25) or a number of examples (500)."""

    dev: Size
    test: Size
    seed: Seed
    # Scale every feature to mean 0, std 1 with statistics of the train split
    # only (scikit-learn's StandardScaler), for features of very different ranges.
    standardize: bool = False

    @model_validator(mode="after")
    def _leaves_training_data(self):
        if self.dev < 1 and self.test < 1 and self.dev + self.test >= 1:
            raise ValueError("dev + test must be below 1, or nothing is left to train on")
        return self


@dataclass(frozen=True)
class Splits:
    """Train, dev and test arrays of one dataset, labels as class indices 0..k-1."""

    X: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    classes: np.ndarray  # original label values, in index order
    image_shape: tuple[int, int] | None = None  # rows, columns of each example's pixels

    @property
    def n_features(self) -> int:
        return self.X["train"].shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def stratified(X: np.ndarray, y: np.ndarray, size: int, seed: int, part: str, classes: np.ndarray):
    """scikit-learn's stratified split of size examples out of (X, y), as
    X_rest, X_part, y_rest, y_part; what it cannot do said in one line first
    (its own errors are tracebacks deep in its validation)."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < 2:
        label = classes[counts.argmin()].item()
        shown = f"{label:g}" if isinstance(label, (int, float)) else repr(label)  # as the reports name classes
        raise PipelineError(f"class {shown} has {counts.min()} example(s) left when carving {part}: a stratified "
                            "split needs at least 2 of each class; add examples or drop the class")
    if size < len(classes) or len(y) - size < len(classes):
        raise PipelineError(f"{part} ({size} examples) and what is left ({len(y) - size}) must each hold every one "
                            f"of the {len(classes)} classes: change split.{part}")
    return train_test_split(X, y, test_size=size, stratify=y, random_state=seed)


def split(raw: Raw, config: SplitConfig) -> Splits:
    """Carve test (unless the source ships one) and then dev out of the data,
    and standardize the features if asked.

    Shares of dev and test are of the whole data set; with a shipped test set,
    dev is a share of the shipped training part.
    """
    classes, y = np.unique(raw.y, return_inverse=True)
    X = raw.X
    n_test = 0 if raw.X_test is not None else count(config.test, len(X))
    n_dev = count(config.dev, len(X))
    if n_dev + n_test >= len(X):
        raise PipelineError(f"dev ({n_dev}) and test ({n_test}) take all {len(X)} examples: "
                            "nothing is left to train on")
    if raw.X_test is None:
        X, X_test, y, y_test = stratified(X, y, n_test, config.seed, "test", classes)
    else:
        unseen = np.setdiff1d(raw.y_test, classes)
        if unseen.size:
            raise PipelineError(f"the test labels {unseen.tolist()} never occur in the training data")
        X_test, y_test = raw.X_test, np.searchsorted(classes, raw.y_test)
    if n_dev > 0:
        X, X_dev, y, y_dev = stratified(X, y, n_dev, config.seed, "dev", classes)
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


def split_source(name: str, source: SourceConfig, config: SplitConfig) -> Splits:
    """A dataset's splits made in memory from its source, checked as the fetch
    stage checks it: the entry points outside DVC (pipeline.train, pipeline.search)."""
    return split(check(source.load(), name), config)


def count(size: float, n: int) -> int:
    """A number of examples: size itself, or its share of n rounded up as
    scikit-learn does, after dropping float noise (0.1 of 5 000 is 500, not 501)."""
    return int(size) if size >= 1 else math.ceil(round(size * n, 9))


def split_path(name: str, part: str) -> Path:
    return SPLIT_DIR / name / f"{part}.npz"


def save_splits(name: str, splits: Splits) -> None:
    shape = {"image_shape": np.asarray(splits.image_shape)} if splits.image_shape else {}
    for part in SPLITS:
        write_npz(split_path(name, part), X=splits.X[part], y=splits.y[part], classes=splits.classes, **shape)


def load_splits(name: str) -> Splits:
    parts = {part: load_npz(split_path(name, part)) for part in SPLITS}
    for part, content in parts.items():
        if not {"X", "y", "classes"} <= set(content):
            raise PipelineError(f"{split_path(name, part)} lacks arrays X, y and classes: rerun the split stage")
    shape = parts["train"].get("image_shape")
    return Splits(
        X={part: c["X"] for part, c in parts.items()},
        y={part: c["y"] for part, c in parts.items()},
        classes=parts["train"]["classes"],
        image_shape=tuple(int(d) for d in shape) if shape is not None else None,
    )


def checksum(splits: Splits) -> str:
    """sha256 of the split arrays: the data a run saw, for its MLflow tag."""
    digest = hashlib.sha256()
    for part in SPLITS:
        for array in (splits.X[part], splits.y[part]):
            digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(np.ascontiguousarray(splits.classes).tobytes())
    return digest.hexdigest()
