"""A MATLAB .mat file downloaded from a list of mirrors (the course article's
football data): its schema, and reading its train and shipped test arrays."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, PositiveFloat, StringConstraints

from pipeline.core.errors import PipelineError
from pipeline.data.download import download
from pipeline.data.raw import Raw, SourceConfig


class MatDownloadSource(SourceConfig):
    """A MATLAB .mat file downloaded from the first mirror that answers, checked
    against its sha256. test_keys names the test set the file ships, if any."""

    kind: Literal["mat_download"]
    urls: list[Annotated[str, StringConstraints(pattern=r"^(https?|file)://")]] = Field(min_length=1)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    train_keys: tuple[str, str] = ("X", "y")
    test_keys: tuple[str, str] | None = ("Xval", "yval")
    timeout_seconds: PositiveFloat = 30.0

    @property
    def ships_test_set(self) -> bool:
        return self.test_keys is not None

    def load(self) -> Raw:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "data.mat"
            url = download(self.urls, self.sha256, path, self.timeout_seconds)
            return read_mat(path, self.train_keys, self.test_keys, origin=url)


def read_mat(path: Path, train_keys: tuple[str, str], test_keys: tuple[str, str] | None,
             origin: str | None = None) -> Raw:
    """The arrays of a .mat file; errors name origin (where the file came
    from: a download's URL), or else path."""
    from scipy.io import loadmat

    origin = origin or str(path)
    try:
        content = loadmat(path)
    except Exception as error:  # scipy raises several unrelated types for a bad file
        raise PipelineError(f"{origin} is not a readable .mat file: {error}") from None
    needed = [*train_keys, *(test_keys or ())]
    missing = [key for key in needed if key not in content]
    if missing:
        found = sorted(k for k in content if not k.startswith("__"))
        raise PipelineError(f"{origin} lacks the keys {missing} (it has {found})")
    X, y = _features_labels(content, *train_keys, origin)
    if test_keys is None:
        return Raw(X, y)
    X_test, y_test = _features_labels(content, *test_keys, origin)
    if X_test.shape[1] != X.shape[1]:
        raise PipelineError(f"{origin}: test features have {X_test.shape[1]} columns, train features {X.shape[1]}")
    return Raw(X, y, X_test, y_test)


def _features_labels(content: dict, x_key: str, y_key: str, origin: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(content[x_key], dtype=np.float64)
    y = np.asarray(content[y_key]).ravel()
    if X.ndim != 2 or len(X) != len(y):
        raise PipelineError(f"{origin}: {x_key} must be (n, features) with one label per row in {y_key}, "
                            f"got {X.shape} and {y.shape}")
    return X, y
