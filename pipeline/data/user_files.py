"""A user's own data: a CSV file with a header row, or an .npz file.

Every problem a file can have (missing, empty, an unknown column, a value
that is not a number, an empty cell or NaN, arrays of the wrong shape) is
reported in one line that names the file and where in it; single-class
labels are refused later, by raw.check, like for every source.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from pipeline.core.errors import PipelineError
from pipeline.data.raw import Raw, SourceConfig


class CsvSource(SourceConfig):
    """A user's CSV file with a header row: numeric feature columns and a label
    column of whole numbers."""

    kind: Literal["csv"]
    path: str = Field(min_length=1)  # relative to the repository root; keep it under data/files/
    label: str = Field(min_length=1)  # the label column's name
    features: list[str] | None = Field(default=None, min_length=1)  # None: every column but the label

    def load(self) -> Raw:
        return Raw(*read_csv(self))


class NpzSource(SourceConfig):
    """A user's .npz file: a (n, features) array and a (n,) array of whole-number labels."""

    kind: Literal["npz"]
    path: str = Field(min_length=1)  # relative to the repository root; keep it under data/files/
    features: str = "X"  # the features array's name in the file
    label: str = "y"  # the labels array's name

    def load(self) -> Raw:
        return Raw(*read_npz(self))


def existing(path: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise PipelineError(f"data file {path} not found (paths are relative to the repository root)")
    return file


COLUMNS_SHOWN = 10  # of a header, in an error: enough to spot a typo, not a wall


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(source: CsvSource) -> tuple[np.ndarray, np.ndarray]:
    path = existing(source.path)
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise PipelineError(f"{path} is empty: expected a header row and data rows")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    features = source.features if source.features is not None else [c for c in header if c != source.label]
    unknown = [c for c in [source.label, *features] if c not in header]
    if unknown:
        if all(is_number(cell) for cell in header):  # not a header at all, and a data row can be thousands of cells
            raise PipelineError(f"{path} has no header row (its first row is numbers): add one naming the columns, "
                                f"the label {source.label!r} among them")
        shown = header[:COLUMNS_SHOWN] + ([f"... {len(header) - COLUMNS_SHOWN} more"] if len(header) > COLUMNS_SHOWN
                                           else [])
        raise PipelineError(f"{path} has no column {unknown[0]!r} (its columns: {shown})")
    if not features:
        raise PipelineError(f"{path} has no feature columns besides the label {source.label!r}")
    if not body:
        raise PipelineError(f"{path} has a header but no data rows")
    index = {name: i for i, name in enumerate(header)}
    columns = [*features, source.label]
    values = np.empty((len(body), len(columns)))
    for line, row in enumerate(body, start=2):  # line 1 is the header
        if len(row) != len(header):
            raise PipelineError(f"{path} line {line}: {len(row)} fields, the header has {len(header)}")
        for j, column in enumerate(columns):
            values[line - 2, j] = number(row[index[column]], path, line, column)
    return values[:, :-1], values[:, -1]


def number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        what = "an empty cell" if not text.strip() else f"{text.strip()!r}, not a number"
        raise PipelineError(f"{path} line {line}, column {column!r}: {what}") from None
    if not math.isfinite(value):
        raise PipelineError(f"{path} line {line}, column {column!r}: {text.strip()} is not a finite number")
    return value


def read_npz(source: NpzSource) -> tuple[np.ndarray, np.ndarray]:
    path = existing(source.path)
    try:
        with np.load(path, allow_pickle=False) as content:
            arrays = {name: content[name] for name in content.files}
    except Exception as error:  # not a zip, truncated, object arrays
        raise PipelineError(f"{path} is not a readable .npz file ({error})") from None
    missing = [key for key in (source.features, source.label) if key not in arrays]
    if missing:
        raise PipelineError(f"{path} has no array {missing[0]!r} (it has {sorted(arrays)})")
    X, y = arrays[source.features], arrays[source.label]
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise PipelineError(f"{path}: {source.features} must be (n, features) and {source.label} (n,), "
                            f"got {X.shape} and {y.shape}")
    for name, array in ((source.features, X), (source.label, y)):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise PipelineError(f"{path}: {name} holds {array.dtype} values, not numbers")
    X, y = X.astype(np.float64), y.astype(np.float64)
    if not np.isfinite(X).all():
        row = int(np.argwhere(~np.isfinite(X))[0][0])
        raise PipelineError(f"{path}: {source.features} has NaN or infinite values (first in row {row})")
    return X, y
