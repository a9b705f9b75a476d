"""The whole pipeline through real `dvc repro` / `dvc exp run` in a temporary
git repository, tracked in a real SQLite MLflow store."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from conftest import mlflow_client, run

RECIPES = ["baseline", "l2"]


def test_cold_repro_writes_every_output(built_project):
    for recipe in RECIPES:
        metrics = json.loads((built_project / f"metrics/moons/{recipe}/seed_0.json").read_text())
        assert set(metrics) == {"train", "dev", "test", "per_class", "weights", "training"}
        assert sum(c["support"] for c in metrics["per_class"].values()) == 30
        for part in ("train", "dev", "test"):
            assert 0.0 <= metrics[part]["accuracy"] <= 1.0
            assert metrics[part]["loss"] > 0
        assert 0.0 <= metrics["weights"]["sparsity"] <= 1.0
        assert metrics["training"]["steps"] == 60
        figures = built_project / f"plots/moons/{recipe}/seed_0"
        assert sorted(p.name for p in figures.iterdir()) == [
            "confusion_matrix.png", "decision_boundary.png", "learning_curves.png", "weight_histogram.png"]
        for png in figures.iterdir():
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (built_project / f"models/moons/{recipe}/seed_0/model.pt").stat().st_size > 0
    summary = (built_project / "reports/moons/summary.md").read_text()
    for recipe in RECIPES:
        assert re.search(rf"^\| {recipe} \| [\d.]+% \| [\d.]+% \| [\d.]+% \|", summary, re.M), summary
    assert re.search(r"^\| l2 \|.*\| sum W\^2 [\d.]+ \|$", summary, re.M), summary
    table = json.loads((built_project / "reports/moons/summary.json").read_text())
    assert set(table) == set(RECIPES)
    assert all(row["diagnosis"] for row in table.values())
    assert all(row["seeds"] == 1 and row["test_accuracy_std"] == 0 for row in table.values())
    assert (built_project / "reports/moons/figures/decision_boundaries.png").read_bytes()[:4] == b"\x89PNG"
    assert "](figures/decision_boundaries.png)" in summary
    # no temporary files of the atomic writes are left behind
    assert not list(built_project.rglob(".*.tmp*"))


def test_mlflow_has_one_run_per_recipe_with_params_metrics_and_artifacts(built_project):
    client = mlflow_client(built_project)
    experiment = client.get_experiment_by_name("moons")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {*RECIPES, "report"}
    assert str(built_project / "mlartifacts") in experiment.artifact_location
    for recipe in RECIPES:
        r = runs[recipe]
        assert r.info.status == "FINISHED"
        assert r.data.tags["dataset"] == "moons" and r.data.tags["recipe"] == recipe and r.data.tags["seed"] == "0"
        assert r.data.tags["pipeline_run"] == runs["report"].data.tags["pipeline_run"]
        assert re.fullmatch(r"[0-9a-f]{64}", r.data.tags["data_sha256"])
        assert r.data.params["trainer.max_steps"] == "60"
        assert r.data.params["model.hidden.0"] == "32"
        assert all(len(v) <= 500 for v in r.data.params.values())
        curve = client.get_metric_history(r.info.run_id, "dev_loss")
        assert [m.step for m in curve] == [0, 20, 40, 60]
        metrics = json.loads((built_project / f"metrics/moons/{recipe}/seed_0.json").read_text())
        assert r.data.metrics["test_accuracy"] == metrics["test"]["accuracy"]
        assert r.data.metrics["sparsity"] == metrics["weights"]["sparsity"]
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert {"config.yaml", "evaluation"} <= artifacts
        assert [a.path for a in client.list_artifacts(r.info.run_id, "evaluation")] == [
            "evaluation/confusion_matrix.png", "evaluation/decision_boundary.png", "evaluation/learning_curves.png",
            "evaluation/weight_histogram.png",
        ]
    assert runs["l2"].data.params["regularization.l2.strength"] == "1.0"
    models = client.search_logged_models([experiment.experiment_id])
    assert {m.source_run_id for m in models} >= {runs[r].info.run_id for r in RECIPES}
    assert all(m.model_id for m in models)


def test_logged_model_loads_and_has_a_signature(built_project):
    import mlflow.pyfunc
    import numpy as np

    client = mlflow_client(built_project)
    experiment = client.get_experiment_by_name("moons")
    model = client.search_logged_models([experiment.experiment_id], max_results=1)[0]
    mlflow.set_tracking_uri(f"sqlite:///{built_project / 'mlflow.db'}")
    loaded = mlflow.pyfunc.load_model(model.model_uri)
    assert loaded.metadata.signature is not None
    proba = loaded.predict(np.zeros((3, 2), dtype=np.float32))
    assert proba.shape == (3, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_second_repro_is_a_no_op(built_project):
    result = run(["dvc", "repro"], built_project)
    assert "Running stage" not in result.stdout
    assert "Data and pipelines are up to date" in result.stdout


def test_override_reruns_only_the_recipe_that_uses_it(built_project):
    result = run(["dvc", "exp", "run", "-S", "suite.l2.l2.strength=0.3"], built_project)
    ran = set(re.findall(r"Running stage '([^']+)'", result.stdout))
    assert ran == {"train@moons-l2-0", "evaluate@moons-l2-0", "report@moons"}, result.stdout
    params = yaml.safe_load((built_project / "params.yaml").read_text())
    assert params["suite"]["l2"]["l2"]["strength"] == 0.3
    shown = json.loads(run(["dvc", "exp", "show", "--json"], built_project).stdout)
    assert "0.3" in json.dumps(shown)  # the experiment is listed with its param
    assert "test" in json.dumps(shown) and "accuracy" in json.dumps(shown)


@pytest.mark.slow
def test_every_offline_dataset_runs_through_dvc(project):
    """digits, mnist5k and the user-file examples, next to moons, in one `dvc exp run`."""
    added = {"digits": "digits", "mnist5k": "mnist5k", "iris": "csv", "cancer": "npz"}
    overrides = [arg for name, config in added.items() for arg in ("-S", f"+dataset@datasets.{name}={config}")]
    result = run(["dvc", "exp", "run", *overrides], project)
    ran = set(re.findall(r"Running stage '([^']+)'", result.stdout))
    assert {f"report@{name}" for name in added} <= ran, result.stdout
    expected = {"digits": (10, 450, True), "mnist5k": (10, 1500, True), "iris": (3, 30, False),
                "cancer": (2, 114, False)}
    for name, (classes, test_size, images) in expected.items():
        metrics = json.loads((project / f"metrics/{name}/l2/seed_0.json").read_text())
        assert len(metrics["per_class"]) == classes
        assert sum(c["support"] for c in metrics["per_class"].values()) == test_size
        assert metrics["train"]["accuracy"] > 1.5 / classes, name  # learned something in 60 steps
        figures = sorted(p.name for p in (project / f"plots/{name}/l2/seed_0").iterdir())
        image_figures = ["first_layer_weights.png", "misclassified.png"] if images else []
        assert figures == sorted(["confusion_matrix.png", "learning_curves.png", "weight_histogram.png",
                                   *image_figures]), name
        report = sorted(p.name for p in (project / f"reports/{name}/figures").iterdir())
        assert report == (["first_layer_weights.png"] if images else []), name
