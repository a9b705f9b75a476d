"""Materialize a dataset's raw arrays from its configured source, and read the
raw and split files the stages exchange."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import images, user_files
from pipeline.config import MatDownloadSource, Source
from pipeline.download import download
from pipeline.errors import PipelineError
from pipeline.generators import GENERATORS

RAW_DIR = Path("data/raw")
SPLIT_DIR = Path("data/split")
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Raw:
    """Features and labels; the test part only when the source ships one;
    for images, the (rows, columns) each row of pixels unflattens to."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    image_shape: tuple[int, int] | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of data/raw/<name>.npz."""
        optional = {"X_test": self.X_test, "y_test": self.y_test, "image_shape": self.image_shape}
        return {"X": self.X, "y": self.y} | {k: np.asarray(v) for k, v in optional.items() if v is not None}

    @classmethod
    def from_arrays(cls, content: dict[str, np.ndarray]) -> "Raw":
        shape = content.get("image_shape")
        return cls(content["X"], content["y"], content.get("X_test"), content.get("y_test"),
                   tuple(int(d) for d in shape) if shape is not None else None)


def materialize(source: Source) -> Raw:
    if source.kind in GENERATORS:
        return Raw(*GENERATORS[source.kind](source))
    if source.kind in ("digits", "mnist5k"):
        X, y, shape = getattr(images, source.kind)(source)
        return Raw(X, y, image_shape=shape)
    if source.kind == "idx_download":
        X, y, X_test, y_test, shape = images.idx_download(source)
        return Raw(X, y, X_test, y_test, shape)
    if source.kind in ("csv", "npz"):
        return Raw(*getattr(user_files, f"read_{source.kind}")(source))
    if isinstance(source, MatDownloadSource):
        with tempfile.TemporaryDirectory() as tmp:
            path = download(source.urls, source.sha256, Path(tmp) / "data.mat", source.timeout_seconds)
            return read_mat(path, source.train_keys, source.test_keys)
    raise TypeError(f"no loader for source {source!r}")


def read_mat(path: Path, train_keys: tuple[str, str], test_keys: tuple[str, str] | None) -> Raw:
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except Exception as error:  # scipy raises several unrelated types for a bad file
        raise PipelineError(f"{path} is not a readable .mat file: {error}") from None
    needed = [*train_keys, *(test_keys or ())]
    missing = [key for key in needed if key not in content]
    if missing:
        found = sorted(k for k in content if not k.startswith("__"))
        raise PipelineError(f"{path} lacks the keys {missing} (it has {found})")
    X, y = _features_labels(content, *train_keys, path)
    if test_keys is None:
        return Raw(X, y)
    X_test, y_test = _features_labels(content, *test_keys, path)
    if X_test.shape[1] != X.shape[1]:
        raise PipelineError(f"{path}: test features have {X_test.shape[1]} columns, train features {X.shape[1]}")
    return Raw(X, y, X_test, y_test)


def _features_labels(content: dict, x_key: str, y_key: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(content[x_key], dtype=np.float64)
    y = np.asarray(content[y_key]).ravel()
    if X.ndim != 2 or len(X) != len(y):
        raise PipelineError(f"{path}: {x_key} must be (n, features) with one label per row in {y_key}, "
                            f"got {X.shape} and {y.shape}")
    return X, y


def check(raw: Raw, name: str) -> Raw:
    """Refuse data no model can learn from, naming the problem."""
    parts = [("train", raw.X, raw.y)] + ([("test", raw.X_test, raw.y_test)] if raw.X_test is not None else [])
    for part, X, y in parts:
        if len(X) == 0:
            raise PipelineError(f"dataset {name}: the {part} part is empty")
        if not np.isfinite(X).all():
            raise PipelineError(f"dataset {name}: the {part} features contain NaN or infinite values")
        if not np.array_equal(y, np.round(y)):
            raise PipelineError(f"dataset {name}: the {part} labels are not whole numbers")
    if raw.image_shape is not None and int(np.prod(raw.image_shape)) != raw.X.shape[1]:
        raise PipelineError(f"dataset {name}: images of {raw.image_shape} pixels do not fill {raw.X.shape[1]} features")
    if len(np.unique(raw.y)) < 2:
        raise PipelineError(f"dataset {name}: the labels hold a single class, there is nothing to classify")
    return raw


def raw_path(name: str) -> Path:
    return RAW_DIR / f"{name}.npz"


def split_path(name: str, part: str) -> Path:
    return SPLIT_DIR / name / f"{part}.npz"


def load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as content:
            return dict(content)
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing: run the stage that makes it (dvc repro)") from None
    except Exception as error:  # truncated zip, bad pickle, wrong format
        raise PipelineError(f"{path} is corrupt ({error}): delete it and run dvc repro") from None


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
