"""Links into the MLflow UI: a tracking server's own, or the local one `mlflow ui` serves."""

from __future__ import annotations

import pytest

from pipeline.core.errors import PipelineError
from pipeline.tracking.store import connect, run_url, ui_command


def test_a_servers_runs_are_linked_on_the_server():
    for uri in ("https://mlflow.example.org/team", "https://mlflow.example.org/team/"):
        assert run_url(uri, "7", "abc123") == "https://mlflow.example.org/team/#/experiments/7/runs/abc123"
        assert ui_command(uri) is None


def test_a_local_stores_runs_are_linked_on_the_ui_that_mlflow_ui_serves():
    uri = "sqlite:////home/me/lab/mlflow.db"
    assert run_url(uri, "2", "abc123") == "http://127.0.0.1:5000/#/experiments/2/runs/abc123"
    assert ui_command(uri) == "mlflow ui --backend-store-uri sqlite:////home/me/lab/mlflow.db"
    assert ui_command("sqlite:////home/me/my lab/mlflow.db") == (
        "mlflow ui --backend-store-uri 'sqlite:////home/me/my lab/mlflow.db'")


def test_a_sqlite_store_that_cannot_be_created_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "lab").write_text("a file where the store's directory should be\n")
    uri = f"sqlite:///{tmp_path / 'lab/mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(PipelineError) as caught:
        connect()
    assert str(caught.value) == (f"cannot open the MLflow store {tmp_path / 'lab/mlflow.db'}: "
                                 f"[Errno 17] File exists: '{tmp_path / 'lab'}'")


def test_a_store_that_is_not_a_database_is_called_that_not_unreachable(tmp_path, monkeypatch):
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"\x00garbage where the tables were" * 100)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    with pytest.raises(PipelineError) as caught:
        connect()
    assert str(caught.value) == (f"the MLflow store {store} is not an SQLite database (corrupt, or another file): "
                                 "move it aside to start a new store, or set MLFLOW_TRACKING_URI")
