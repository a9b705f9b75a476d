"""Links into the MLflow UI: a tracking server's own, or the local one `mlflow ui` serves."""

from __future__ import annotations

from pipeline.tracking.store import run_url, ui_command


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
