"""A dataset's raw arrays as its source makes them, checked, and the raw file
the fetch stage writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import PipelineError
from pipeline.core.schema import Schema

RAW_DIR = Path("data/raw")


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


class SourceConfig(Schema):
    """Where a dataset comes from: a subclass is one kind of source, its
    schema (with a `kind` tag) and load(), which makes its raw arrays."""

    @property
    def ships_test_set(self) -> bool:
        """Whether the source comes with its own test set (kept as the test split)."""
        return False

    def load(self) -> Raw:
        raise NotImplementedError


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


def load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as content:
            return dict(content)
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing: run the stage that makes it (dvc repro)") from None
    except Exception as error:  # truncated zip, bad pickle, wrong format
        raise PipelineError(f"{path} is corrupt ({error}): delete it and run dvc repro") from None


def load_raw(name: str) -> Raw:
    content = load_npz(raw_path(name))
    if not {"X", "y"} <= set(content):
        raise PipelineError(f"{raw_path(name)} lacks arrays X and y: rerun the fetch stage")
    return check(Raw.from_arrays(content), name)
