"""The whole pipeline through real `dvc repro` / `dvc exp run` in a temporary
git repository (moons, recipes baseline and l2, seeds 0 and 1, one path of
three L2 strengths), tracked in a real SQLite MLflow store."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, mlflow_client, run

RECIPES, SEEDS = ["baseline", "l2"], [0, 1]
METRICS = {"train", "dev", "test", "per_class", "weights", "training"}


def test_cold_repro_writes_every_output(built_project):
    for recipe in RECIPES:
        assert sorted(p.name for p in (built_project / f"models/moons/{recipe}").iterdir()) == [
            "history.csv", "model.pt", "training.json"]
        training = json.loads((built_project / f"models/moons/{recipe}/training.json").read_text())
        assert sorted(training) == ["0", "1"] and all(entry["steps"] == 60 for entry in training.values())
        with open(built_project / f"models/moons/{recipe}/history.csv") as handle:
            history = list(csv.DictReader(handle))
        steps = [(seed, step) for seed in "01" for step in ("0", "20", "40", "60")]
        assert [(row["seed"], row["step"]) for row in history] == steps
        for seed in SEEDS:
            metrics = json.loads((built_project / f"metrics/moons/{recipe}/seed_{seed}.json").read_text())
            assert set(metrics) == METRICS
            assert sum(c["support"] for c in metrics["per_class"].values()) == 30
            for part in ("train", "dev", "test"):
                assert 0.0 <= metrics[part]["accuracy"] <= 1.0 and metrics[part]["loss"] > 0
            assert metrics["training"]["steps"] == 60 and "run_id" not in metrics["training"]
            figures = built_project / f"plots/moons/{recipe}/seed_{seed}"
            assert sorted(p.name for p in figures.iterdir()) == [
                "confusion_matrix.png", "decision_boundary.png", "learning_curves.png", "weight_histogram.png"]
            assert all(png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for png in figures.iterdir())
        # the seeds made different networks
        first, second = (json.loads((built_project / f"metrics/moons/{recipe}/seed_{s}.json").read_text())
                         for s in SEEDS)
        assert first["weights"] != second["weights"]
    # no temporary files of the atomic writes are left behind
    assert not list(built_project.rglob(".*.tmp*"))


def test_report_gives_intervals_paired_differences_and_the_path(built_project):
    summary = (built_project / "reports/moons/summary.md").read_text()
    assert summary.startswith("# moons: regularization recipes compared over 2 seeds")
    assert "Test set: 30 examples" in summary
    interval = r"[\d.]+% \[[\d.]+, [\d.]+\]"
    for recipe in RECIPES:
        assert re.search(rf"^\| {recipe} \| {interval} \| {interval} \| {interval} \|", summary, re.M), summary
    assert re.search(r"^\| l2 \|.*\| [+-][\d.]+ \[[+-][\d.]+, [+-][\d.]+\] pts \| [\d.e-]+, [\d.e-]+ \| "
                     r"(higher than baseline|lower than baseline|not separated) \| \d+% \[\d+, \d+\] \| "
                     r"(\d+|—) \|.*\| sum W\^2 [\d.]+ \|$", summary, re.M), summary
    assert re.search(r"^\| l2 \| l2.strength \| (0.1|1|10) \| ", summary, re.M), summary
    table = json.loads((built_project / "reports/moons/summary.json").read_text())
    assert table["test_size"] == 30 and table["seeds"] == SEEDS
    assert set(table["recipes"]) == set(RECIPES)
    l2 = table["recipes"]["l2"]
    assert set(l2["test_accuracy"]) == {"mean", "ci95_low", "ci95_high", "n"} and l2["test_accuracy"]["n"] == 2
    assert l2["verdict"] in ("higher", "lower", "not separated")
    metrics = [json.loads((built_project / f"metrics/moons/l2/seed_{s}.json").read_text()) for s in SEEDS]
    assert l2["test_accuracy"]["mean"] == pytest.approx(sum(m["test"]["accuracy"] for m in metrics) / 2)
    assert table["chosen_on_dev"]["recipe"] in RECIPES
    assert table["paths"]["l2"]["selected"] in (0.1, 1, 10)
    assert table["paths"]["l2"]["one_se"]["strength"] >= table["paths"]["l2"]["selected"]  # L2: larger is stronger
    assert l2["p_value"] <= l2["p_value_holm"] <= 1 and 0 <= l2["beats_baseline"]["mean"] <= 1
    report_figures = built_project / "reports/moons/figures"
    assert sorted(p.name for p in report_figures.iterdir()) == ["decision_boundaries.png", "weight_histograms.png"]
    assert all(png.read_bytes()[:4] == b"\x89PNG" for png in report_figures.iterdir())
    assert "![decision boundaries (first seed)](figures/decision_boundaries.png)" in summary
    assert "![weight histograms (first seed)](figures/weight_histograms.png)" in summary
    page = (built_project / "reports/moons/index.html").read_text()
    assert "<table>" in page and page.count('src="data:image/png;base64,') == 3  # two comparisons, the l2 path


def test_dvc_views_fit_a_terminal(built_project):
    """Metrics: one compact file per dataset; plots: the comparisons and interactive curves and paths."""
    table = json.loads((built_project / "reports/moons/summary.json").read_text())
    compact = json.loads((built_project / "reports/moons/test_accuracy.json").read_text())
    assert compact == {recipe: round(row["test_accuracy"]["mean"], 4) for recipe, row in table["recipes"].items()}
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], built_project).stdout)
    assert json.dumps(shown).count('"l2"') == 1  # one metrics file, one column per recipe
    compact_view = r"(datasets|paths|suite|model|trainer|analysis|report)\.|(data|metrics|models|pipeline)(/|$)|reports/\w+/paths$"
    assert compact_view in (ROOT / "README.md").read_text()  # the command the README gives
    header = run(["dvc", "exp", "show", "--csv", "--drop", compact_view], built_project).stdout.splitlines()[0]
    assert header.split(",")[5:] == ["baseline", "l2", "seeds"], header  # each recipe's test accuracy, the seeds
    plots = json.loads(run(["dvc", "plots", "show", "--json"], built_project).stdout)
    assert "errors" not in plots, plots["errors"]
    kinds = {name: {entry["type"] for entry in entries} for name, entries in plots["data"].items()}
    assert kinds["models/moons/l2/history.csv"] == {"vega"} and kinds["reports/moons/paths/l2.csv"] == {"vega"}
    assert kinds["reports/moons/paths/l2.png"] == {"image"}
    assert not any(name.startswith("plots/") for name in kinds)  # per-seed figures stay in MLflow and plots/
    path_plot = plots["data"]["reports/moons/paths/l2.csv"][0]["content"]
    assert path_plot["encoding"]["x"]["scale"] == {"type": "log"} and len(path_plot["data"]["values"]) == 6


def test_path_stage_writes_a_row_per_strength_and_seed_and_its_figure(built_project):
    with open(built_project / "reports/moons/paths/l2.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(float(r["strength"]), int(r["seed"])) for r in rows] == [(v, s) for v in (0.1, 1, 10) for s in SEEDS]
    assert list(rows[0]) == ["strength", "seed", "train_accuracy", "dev_accuracy", "test_accuracy", "train_loss",
                             "dev_loss", "test_loss", "squared_weight_sum"]
    weights = {float(r["strength"]): float(r["squared_weight_sum"]) for r in rows if r["seed"] == "0"}
    assert weights[10] < weights[1] < weights[0.1]  # stronger L2, smaller weights
    assert (built_project / "reports/moons/paths/l2.png").read_bytes()[:4] == b"\x89PNG"


def images(client, run_id: str) -> dict[str, list[int]]:
    """MLflow's image cards of a run: key -> steps, from the artifact names log_image writes."""
    cards: dict[str, list[int]] = {}
    for artifact in client.list_artifacts(run_id, "images"):
        name = artifact.path.split("/")[-1]
        if name.endswith(".png"):
            key, _, step = name.split("+")[:3]
            cards.setdefault(key, []).append(int(step))
    return {key: sorted(steps) for key, steps in cards.items()}


def test_mlflow_nests_every_run_of_a_pipeline_run_under_its_parent(built_project):
    client = mlflow_client(built_project)
    experiment = client.get_experiment_by_name("moons")
    assert experiment.tags["mlflow.note.content"].startswith("Dataset moons: 2 features, 2 classes; train 60")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI's model-training views
    runs = client.search_runs([experiment.experiment_id])
    assert str(built_project / "mlartifacts") in experiment.artifact_location
    (parent,) = [r for r in runs if r.data.tags.get("kind") == "pipeline"]
    assert parent.info.status == "FINISHED" and parent.info.run_name.startswith("pipeline ")
    assert parent.data.tags["mlflow.note.content"] == (built_project / "reports/moons/summary.md").read_text()
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"summary.md", "summary.json"}
    assert {r.data.tags["pipeline_run"] for r in runs} == {parent.data.tags["pipeline_run"]}
    nested = {r.info.run_id for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}

    trained = [r for r in runs if r.data.tags.get("kind") == "recipe"]
    assert sorted((r.data.tags["recipe"], r.data.tags["seed"]) for r in trained) == [
        (recipe, str(seed)) for recipe in RECIPES for seed in SEEDS]
    for r in trained:
        recipe, seed = r.data.tags["recipe"], int(r.data.tags["seed"])
        assert r.info.run_id in nested
        assert r.info.run_name == recipe and r.info.status == "FINISHED"
        assert r.data.params["trainer.max_steps"] == "60" and r.data.params["seed"] == str(seed)
        assert all(len(v) <= 500 for v in r.data.params.values())
        # learning curves at every evaluation; the evaluated network's values once, where it was kept
        assert [m.step for m in client.get_metric_history(r.info.run_id, "curve/dev_loss")] == [0, 20, 40, 60]
        assert [m.step for m in client.get_metric_history(r.info.run_id, "test_accuracy")] == [60]
        assert [m.step for m in client.get_metric_history(r.info.run_id, "initial_cost")] == [0]
        metrics = json.loads((built_project / f"metrics/moons/{recipe}/seed_{seed}.json").read_text())
        assert r.data.metrics["test_accuracy"] == metrics["test"]["accuracy"]
        assert r.data.metrics["dev_accuracy"] == metrics["dev"]["accuracy"]
        assert r.data.metrics["sparsity"] == metrics["weights"]["sparsity"]
        assert f"test {metrics['test']['accuracy']:.1%}" in r.data.tags["mlflow.note.content"]
        assert r.data.tags["mlflow.note.content"].startswith(f"{recipe} (")
        assert images(client, r.info.run_id) == {
            "boundary_during_training": [0, 20, 40, 60], "confusion_matrix": [60], "decision_boundary": [60],
            "learning_curves": [60], "weight_histogram": [60]}
        assert "config.yaml" in {a.path for a in client.list_artifacts(r.info.run_id)}
        (dataset,) = r.inputs.dataset_inputs
        assert dataset.dataset.name == "moons" and dataset.tags[0].value == "training"

    (path,) = [r for r in runs if r.data.tags.get("kind") == "path"]
    assert path.info.run_id in nested
    assert path.info.run_name == "path l2" and path.data.tags["path"] == "l2"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == path.info.run_id]
    assert sorted(float(r.data.params["strength"]) for r in children) == [0.1, 1, 10]
    for child in children:
        low, mean, high = (child.data.metrics[f"dev_accuracy{s}"] for s in ("_ci95_low", "", "_ci95_high"))
        assert low <= mean <= high
    assert images(client, path.info.run_id) == {"regularization_path": [0]}

    models = client.search_logged_models([experiment.experiment_id])
    assert sorted(m.name for m in models) == sorted(f"{recipe}-seed-{seed}" for recipe in RECIPES for seed in SEEDS)
    for model in models:  # the evaluated network's metrics travel with the model
        run = client.get_run(model.source_run_id)
        assert {m.key: m.value for m in model.metrics}["test_accuracy"] == run.data.metrics["test_accuracy"]


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


def test_second_repro_is_a_no_op_even_after_python_wrote_bytecode(built_project):
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-c", "import pipeline.stages.train"], cwd=built_project, env=environment,
                   check=True)
    assert list(built_project.glob("pipeline/**/__pycache__/*.pyc"))  # beside the code the stages depend on
    result = run(["dvc", "repro"], built_project)
    assert "Running stage" not in result.stdout
    assert "Data and pipelines are up to date" in result.stdout


def test_a_rerun_stage_supersedes_its_earlier_runs(built_project):
    client = mlflow_client(built_project)
    experiment = client.get_experiment_by_name("moons").experiment_id
    before = {r.info.run_id for r in client.search_runs([experiment], "tags.recipe = 'l2'")}
    run(["dvc", "repro", "--force", "--single-item", "train@moons-l2"], built_project)
    current = client.search_runs([experiment], "tags.recipe = 'l2'")
    assert len(current) == len(SEEDS) and not before & {r.info.run_id for r in current}
    (parent,) = {r.data.tags["mlflow.parentRunId"] for r in current}  # the same pipeline run's parent
    from mlflow.entities import ViewType

    old = [r for r in client.search_runs([experiment], "tags.recipe = 'l2'", run_view_type=ViewType.DELETED_ONLY)]
    assert {r.info.run_id for r in old} == before
    assert all(set(r.data.tags["superseded_by"].split(",")) == {c.info.run_id for c in current} for r in old)
    run(["dvc", "repro"], built_project)  # evaluate and report follow the new model


def test_override_reruns_only_the_recipe_that_uses_it(built_project):
    result = run(["dvc", "exp", "run", "-S", "suite.l2.l2.strength=0.3"], built_project)
    ran = set(re.findall(r"Running stage '([^']+)'", result.stdout))
    assert ran == {"validate", "train@moons-l2", "evaluate@moons-l2", "report@moons"}, result.stdout
    params = yaml.safe_load((built_project / "params.yaml").read_text())
    assert params["suite"]["l2"]["l2"]["strength"] == 0.3
    shown = json.loads(run(["dvc", "exp", "show", "--json"], built_project).stdout)
    assert "0.3" in json.dumps(shown)  # the experiment is listed with its param
    assert "test_accuracy" in json.dumps(shown)


def test_a_key_no_stage_reads_still_stops_the_pipeline(built_project):
    """`seed` for `seeds`: no stage reads it, so only the validate stage, which depends on every param, runs."""
    result = run(["dvc", "exp", "run", "-S", "+seed=[1]"], built_project, check=False)
    assert result.returncode != 0
    assert result.stderr.startswith("error: params.yaml: seed: unknown key\n"), result.stderr
    assert set(re.findall(r"Running stage '([^']+)'", result.stdout)) == {"validate"}
