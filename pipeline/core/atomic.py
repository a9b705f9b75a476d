"""Atomic file writes: write to a temporary file beside the target, then rename,
so a killed stage never leaves a half-written file that DVC would accept;
a stage's outputs written as a set, all or none; and a JSON output read back
by a later stage, or one line saying it is missing or corrupt."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.core.errors import PipelineError


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto the
    target only if the block succeeds, delete it otherwise."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp" + target.suffix)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide outputs from other users
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | Path, data: object) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path, remedy: str = "run dvc repro", optional: bool = False) -> dict | None:
    """The JSON file at path; None if optional and not written (a stage writes some files for some recipes only)."""
    if optional and not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise PipelineError(f"{path} is missing or corrupt: {remedy}") from None


def write_npz(target: str | Path, **arrays) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside target; it replaces target only if
    the block succeeds, so a failed stage leaves no half-filled directory."""
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def all_or_none(*targets: str | Path) -> Iterator[None]:
    """A stage's outputs as one set: each file is written atomically, and if
    the block fails (a full disk at the third file, a signal) the ones it
    already wrote are removed, so the stage leaves none rather than some."""
    import shutil

    try:
        yield
    except BaseException:
        for target in map(Path, targets):
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        raise
