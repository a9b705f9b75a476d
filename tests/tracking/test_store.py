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


def test_a_store_damaged_mid_file_is_found_before_any_run_and_named(tmp_path, monkeypatch):
    """Bytes overwritten in the middle of a real store (its header intact, so
    it reads as SQLite): connect() says it is damaged instead of MLflow
    failing at the first page it reaches, mid-run; damage found later still
    is one line (cli)."""
    import sqlite3

    from pipeline.core.errors import machine_fault

    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    client = connect()
    experiment = client.create_experiment("damaged", artifact_location=(tmp_path / "artifacts").as_uri())
    for _ in range(200):  # enough rows for tables of several pages
        client.set_tag(client.create_run(experiment).info.run_id, "note", "x" * 200)
    connect()  # intact: no complaint
    page = sqlite3.connect(store).execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(store.read_bytes())
    middle = len(data) // page // 2 * page
    data[middle:middle + page] = b"\xff" * page  # one page in the middle, overwritten
    store.write_bytes(data)
    with pytest.raises(PipelineError) as caught:
        connect()
    assert str(caught.value).startswith(f"the MLflow store {store} is damaged (SQLite: ")
    assert str(caught.value).endswith("): move it aside to start a new store (`sqlite3 mlflow.db .recover` saves "
                                      "what it can), or set MLFLOW_TRACKING_URI")
    data[page:] = b"\xff" * (len(data) - page)  # every page but the schema's: any table read meets damage
    store.write_bytes(data)
    with pytest.raises(sqlite3.DatabaseError) as reading:  # what MLflow would meet
        sqlite3.connect(store).execute("SELECT * FROM runs").fetchall()
    assert machine_fault(reading.value) == (
        "the MLflow store is damaged (database disk image is malformed): move it aside to start a new store")
