"""Atomic writes: a failed or interrupted write leaves neither the target nor
a temporary file behind, and a successful one leaves exactly the target."""

from __future__ import annotations

import os

import pytest

from pipeline.core.atomic import atomic_path, write_json, write_text


def test_successful_write_leaves_only_the_target(tmp_path):
    write_json(tmp_path / "out" / "metrics.json", {"test": {"accuracy": 0.5}})
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["metrics.json"]
    assert (tmp_path / "out" / "metrics.json").read_text() == '{\n  "test": {\n    "accuracy": 0.5\n  }\n}\n'


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "model.pt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a model")
            raise KeyboardInterrupt  # as when a stage is killed mid-write
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_previous_file_whole(tmp_path):
    target = tmp_path / "summary.md"
    write_text(target, "old report\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new rep")
            raise RuntimeError("plotting failed")
    assert target.read_text() == "old report\n"
    assert list(tmp_path.iterdir()) == [target]


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
