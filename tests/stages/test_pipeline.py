"""The whole pipeline through real `dvc repro` / `dvc exp run` in a temporary
git repository (moons, recipes baseline and l2, seeds 0 and 1, one path of
three L2 strengths), tracked in a real SQLite MLflow store."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from urllib.parse import parse_qs

import numpy as np
import pytest
import yaml
from conftest import BIN, ROOT, mlflow_client, mlflow_server, run
from PIL import Image

from pipeline.analysis.strength_views import load_views
from pipeline.engine import checkpoint
from pipeline.stages.path import first_seeds
from pipeline.tracking.views import VIEW_TAG, deserialized
from pipeline.usecases.training import load_weights

RECIPES, SEEDS = ["baseline", "l2"], [0, 1]
METRICS = {"train", "dev", "test", "per_class", "weights", "training"}


def test_cold_repro_writes_every_output(built_project):
    for recipe in RECIPES:
        assert sorted(p.name for p in (built_project / f"models/moons/{recipe}").iterdir()) == [
            "boundary_during_training", "history.csv", "model.pt", "training.json", "weights_during_training.npz"]
        recorded = load_weights(built_project / f"models/moons/{recipe}/weights_during_training.npz")
        assert sorted(recorded) == [0, 1, 3, 10, 30, 60]  # trainer.max_steps 60
        trained = checkpoint.load(built_project / f"models/moons/{recipe}/model.pt")
        for layer, matrix in zip(trained.net.linear_layers(), recorded[60]):  # the last record is the model
            assert np.array_equal(layer.weight.detach().numpy(), matrix) and matrix.shape[0] == len(SEEDS)
        snapshots = sorted(p.name for p in (built_project / f"models/moons/{recipe}/boundary_during_training").iterdir())
        assert snapshots == sorted(f"seed_{seed}_step_{step}.png" for seed in SEEDS for step in (0, 1, 3, 10, 30, 60))
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
    assert sorted(p.name for p in report_figures.iterdir()) == [
        "decision_boundaries.png", "loss_landscapes.png", "weight_histograms.png",
        "weight_statistics_during_training.png", "weights_during_training.png"]  # no dropout recipe: no dropout figure
    assert "## Loss landscapes of the trained networks" in summary and "## Dropout at test time" not in summary
    for recipe in RECIPES:  # the slice around seed 0's network: 41 x 41 train and dev losses, its own at the centre
        slices = json.loads((built_project / f"metrics/moons/{recipe}/loss_landscape.json").read_text())
        centre = json.loads((built_project / f"metrics/moons/{recipe}/seed_0.json").read_text())
        assert np.shape(slices["train"]["loss"]) == np.shape(slices["dev"]["accuracy"]) == (41, 41)
        assert slices["network_seed"] == 0 and slices["alphas"][20] == 0
        assert slices["dev"]["accuracy"][20][20] == centre["dev"]["accuracy"]
        assert slices["train"]["loss"][20][20] == centre["train"]["loss"]  # the same network, bit for bit
    assert all(png.read_bytes()[:4] == b"\x89PNG" for png in report_figures.iterdir())
    assert "![decision boundaries (first seed)](figures/decision_boundaries.png)" in summary
    assert "![weight histograms (first seed)](figures/weight_histograms.png)" in summary
    page = (built_project / "reports/moons/index.html").read_text()
    assert "## Weights over training" in summary
    assert "![weights during training](figures/weights_during_training.png)" in summary
    # two comparisons, the weights over training (two), the loss landscapes, the l2 path and its boundaries,
    # the penalty landscape; then the sliders' boundaries as first shown (two recipes, the l2 path)
    assert "<table>" in page and page.count('src="data:image/png;base64,') == 8 + 3
    assert "![penalty landscape: bowl](../landscapes/bowl.png)" in summary
    landscapes = json.loads((built_project / "reports/landscapes/landscapes.json").read_text())
    at_one = landscapes["bowl"]["l2"][1]
    assert at_one["strength"] == 1 and at_one["minimum"] == pytest.approx([1.0, 0.5], abs=1e-6)  # (2, 1) / (1 + 1)
    assert sorted(at_one) == ["adam_ends", "gd_ends", "minimum", "strength"]
    during = table["weights_during_training"]
    assert set(during) == set(RECIPES) and set(during["l2"]) == {"squared_weight_sum", "sparsity", "zero_fraction",
                                                                 "max_column_norm"}
    assert [point["step"] for point in during["l2"]["squared_weight_sum"]] == [0, 1, 3, 10, 30, 60]
    # the same seeds start from the same weights whatever the recipe; then L2 shrinks them below the baseline's
    assert during["l2"]["squared_weight_sum"][0] == during["baseline"]["squared_weight_sum"][0]
    assert during["l2"]["squared_weight_sum"][-1]["mean"] < during["baseline"]["squared_weight_sum"][-1]["mean"]


def test_dvc_views_fit_a_terminal(built_project):
    """Metrics: one compact file per dataset; plots: the comparisons and interactive curves and paths."""
    table = json.loads((built_project / "reports/moons/summary.json").read_text())
    compact = json.loads((built_project / "reports/moons/test_accuracy.json").read_text())
    assert compact == {recipe: round(row["test_accuracy"]["mean"], 4) for recipe, row in table["recipes"].items()}
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], built_project).stdout)
    assert json.dumps(shown).count('"l2"') == 1  # one metrics file, one column per recipe
    compact_view = (r"(datasets|paths|suite|model|trainer|analysis|report|landscapes)\.|(data|metrics|models|pipeline|plots)"
                    r"(/|$)|reports/(\w+/(paths|figures|summary\.\w+)|landscapes)$")
    assert compact_view in (ROOT / "docs/parameters.md").read_text()  # the command the docs give
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
                             "dev_loss", "test_loss", "squared_weight_sum",
                             *(f"squared_weight_sum_step_{step}" for step in (0, 1, 3, 10, 30, 60))]
    assert all(r["squared_weight_sum_step_60"] == r["squared_weight_sum"] for r in rows)  # the last record, trained
    weights = {float(r["strength"]): float(r["squared_weight_sum"]) for r in rows if r["seed"] == "0"}
    assert weights[10] < weights[1] < weights[0.1]  # stronger L2, smaller weights
    assert (built_project / "reports/moons/paths/l2.png").read_bytes()[:4] == b"\x89PNG"
    # the boundary at each strength: each one's first seed, the strength chosen on dev named
    selected = json.loads((built_project / "reports/moons/summary.json").read_text())["paths"]["l2"]["selected"]
    panels = first_seeds([0.1, 1, 10], SEEDS, "l2.strength", selected)
    assert [(float(rows[k]["strength"]), rows[k]["seed"]) for k in panels.values()] == [(0.1, "0"), (1, "0"), (10, "0")]
    assert sum("(chosen on dev)" in label for label in panels) == 1
    assert f"l2.strength = {selected:g} (chosen on dev)" in panels
    assert (built_project / "reports/moons/paths/l2_boundaries.png").read_bytes()[:4] == b"\x89PNG"
    page = (built_project / "reports/moons/summary.md").read_text()
    assert "![l2 path: the decision boundary at each strength](paths/l2_boundaries.png)" in page


def images(client, run_id: str) -> dict[str, list[int]]:
    """MLflow's image cards of a run: key -> steps, from the artifact names log_image writes."""
    cards: dict[str, list[int]] = {}
    for artifact in client.list_artifacts(run_id, "images"):
        name = artifact.path.split("/")[-1]
        if name.endswith(".png"):
            key, _, step = name.split("+")[:3]
            cards.setdefault(key, []).append(int(step))
    return {key: sorted(steps) for key, steps in cards.items()}


def test_mlflow_holds_the_pipeline_run_as_a_tree_shaped_like_the_question(built_project):
    """parent (the comparison) > a run per recipe (its evidence over seeds) > a run per seed (its network);
    parent > a run per path > a run per strength."""
    client = mlflow_client(built_project)
    experiment = client.get_experiment_by_name("moons")
    assert experiment.tags["mlflow.note.content"].startswith("Dataset moons: 2 features, 2 classes; train 60")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI's model-training views
    runs = client.search_runs([experiment.experiment_id])
    assert str(built_project / "mlartifacts") in experiment.artifact_location
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.info.run_name for r in runs}) == len(runs)  # every name says which run it is
    children = {}
    for r in runs:
        children.setdefault(r.data.tags.get("mlflow.parentRunId"), []).append(r)

    (parent,) = children[None]
    assert parent.data.tags["kind"] == "pipeline" and parent.info.run_name.startswith("pipeline ")
    summary = json.loads((built_project / "reports/moons/summary.json").read_text())
    description = parent.data.tags["mlflow.note.content"]
    link = re.match(r"\*\*\[Open the comparison\]\((#/experiments/(\d+)/runs\?\S+)\)\*\*", description)
    assert link and link.group(2) == experiment.experiment_id, description[:300]
    assert "\n\n# moons: regularization recipes compared over 2 seeds" in description
    assert f"](get-artifact?path=figures%2Fdecision_boundaries.png&run_uuid={parent.info.run_id})" in description
    assert "](figures/" not in description and "](paths/" not in description  # no link the UI would 404 on
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"summary.md", "summary.json", "figures",
                                                                           "paths"}
    assert parent.data.params["chosen_on_dev"] == summary["chosen_on_dev"]["recipe"]
    assert float(parent.data.params["l2.chosen_on_dev"]) == summary["paths"]["l2"]["selected"]
    assert parent.data.metrics["baseline_test_accuracy_mean"] == summary["recipes"]["baseline"]["test_accuracy"]["mean"]
    assert {r.data.tags["pipeline_run"] for r in runs} == {parent.data.tags["pipeline_run"]}

    recipes = {r.data.tags["recipe"]: r for r in children[parent.info.run_id] if r.data.tags["kind"] == "recipe"}
    assert sorted(recipes) == sorted(RECIPES)
    l2_run, row = recipes["l2"], summary["recipes"]["l2"]
    for bound in ("mean", "ci95_low", "ci95_high"):
        assert l2_run.data.metrics[f"test_accuracy_{bound}"] == row["test_accuracy"][bound]
        assert l2_run.data.metrics[f"test_accuracy_vs_baseline_{bound}"] == row["test_accuracy_vs_baseline"][bound]
    assert l2_run.data.metrics["p_value_holm"] == row["p_value_holm"]
    assert l2_run.data.tags["verdict"] == row["verdict"]
    assert l2_run.data.metrics["separated"] == float(row["verdict"] != "not separated")
    assert "test_accuracy" not in l2_run.data.metrics  # one name, one meaning: that is a network's
    assert "separated" not in recipes["baseline"].data.metrics
    assert images(client, l2_run.info.run_id) == {"decision_boundary": [0]}
    for bound in ("mean", "ci95_low", "ci95_high"):  # the weights over training, over seeds, as the report has them
        history = client.get_metric_history(l2_run.info.run_id, f"curve/squared_weight_sum_{bound}")
        assert [(m.step, m.value) for m in history] == [(p["step"], p[bound]) for p in
                                                        summary["weights_during_training"]["l2"]["squared_weight_sum"]]

    for recipe, recipe_run in recipes.items():
        seeds = children[recipe_run.info.run_id]
        assert sorted(r.info.run_name for r in seeds) == [f"{recipe} · seed {seed}" for seed in SEEDS]
        for r in seeds:
            seed = int(r.data.tags["seed"])
            assert r.data.tags["kind"] == "seed" and r.data.tags["recipe"] == recipe
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
            # the weight statistics over training; the last is the evaluated network's
            assert [m.step for m in client.get_metric_history(r.info.run_id, "curve/sparsity")] == [0, 1, 3, 10, 30, 60]
            assert r.data.metrics["curve/squared_weight_sum"] == pytest.approx(metrics["weights"]["squared_weight_sum"])
            assert f"test {metrics['test']['accuracy']:.1%}" in r.data.tags["mlflow.note.content"]
            assert r.data.tags["mlflow.note.content"].startswith(f"{recipe} (")
            assert images(client, r.info.run_id) == {  # at step 0, where the chart view's image cards start
                "boundary_during_training": [0, 1, 3, 10, 30, 60], "confusion_matrix": [0], "decision_boundary": [0],
                "learning_curves": [0], "weight_histogram": [0]}
            assert "config.yaml" in {a.path for a in client.list_artifacts(r.info.run_id)}
            (dataset,) = r.inputs.dataset_inputs
            assert dataset.dataset.name == "moons" and dataset.tags[0].value == "training"

    (path,) = [r for r in children[parent.info.run_id] if r.data.tags["kind"] == "path"]
    assert path.info.run_name == "path l2" and path.data.tags["path"] == "l2"
    assert path.data.metrics["strength_chosen_on_dev"] == summary["paths"]["l2"]["selected"]
    strengths = children[path.info.run_id]
    assert sorted(float(r.data.params["strength"]) for r in strengths) == [0.1, 1, 10]
    for child in strengths:
        low, mean, high = (child.data.metrics[f"dev_accuracy_{s}"] for s in ("ci95_low", "mean", "ci95_high"))
        assert low <= mean <= high and "dev_accuracy" not in child.data.metrics
        history = client.get_metric_history(child.info.run_id, "curve/squared_weight_sum_mean")
        assert [m.step for m in history] == [0, 1, 3, 10, 30, 60]  # the path's statistic over training
        assert history[-1].value == pytest.approx(child.data.metrics["squared_weight_sum_mean"])
        assert not any("_step_" in name for name in child.data.metrics)
        # its first seed's boundary, the image the report page's slider shows at that strength
        assert images(client, child.info.run_id) == {"decision_boundary": [0]}
        (card,) = [a.path for a in client.list_artifacts(child.info.run_id, "images") if a.path.endswith(".png")]
        with Image.open(client.download_artifacts(child.info.run_id, card, str(built_project / "downloaded"))) as png:
            shown = np.asarray(png.convert("RGB"))
        views = load_views(built_project / "models/moons/paths_by_strength/l2.npz")
        assert np.array_equal(shown, views.images[views.strengths.tolist().index(float(child.data.params["strength"]))])
    assert images(client, path.info.run_id) == {"regularization_path": [0], "decision_boundaries": [0]}

    # the pipeline run holds each recipe's boundary and the path's curve, for the stored view
    assert images(client, parent.info.run_id) == {f"decision_boundary~{recipe}": [0] for recipe in RECIPES} | {
        "weights_during_training": [0], "weight_statistics_during_training": [0], "penalty_landscape~bowl": [0],
        "loss_landscapes": [0]}  # no recipe with dropout: no dropout_at_test_time
    by_strength = sorted(strengths, key=lambda r: float(r.data.params["strength"]))
    curve = {name: [(m.step, m.value) for m in client.get_metric_history(parent.info.run_id, f"path/l2/{name}")]
             for name in ("strength", "log10_strength", "dev_accuracy_mean", "chosen_on_dev")}
    assert curve["strength"] == [(0, 0.1), (1, 1.0), (2, 10.0)]
    assert curve["log10_strength"] == [(0, -1.0), (1, 0.0), (2, 1.0)]
    assert curve["dev_accuracy_mean"] == [(k, r.data.metrics["dev_accuracy_mean"]) for k, r in enumerate(by_strength)]
    chosen = [0.1, 1, 10].index(summary["paths"]["l2"]["selected"])
    assert curve["chosen_on_dev"] == [(chosen, curve["dev_accuracy_mean"][chosen][1])]
    # the view the description links to: the pipeline run, then its recipes in the suite's order
    view = deserialized(experiment.tags[VIEW_TAG + parse_qs(link.group(1).split("?", 1)[1])["viewStateShareKey"][0]])
    listed = client.search_runs([experiment.experiment_id], view["searchFilter"],
                                order_by=[f"{view['orderByKey']} {'ASC' if view['orderByAsc'] else 'DESC'}"])
    assert [r.info.run_name for r in listed] == [parent.info.run_name, *RECIPES]
    assert [card["imageKeys"] for card in view["compareRunCharts"] if card["type"] == "IMAGE"] == [
        *([f"decision_boundary/{recipe}"] for recipe in RECIPES), ["weights_during_training"],
        ["weight_statistics_during_training"], ["loss_landscapes"], ["penalty_landscape/bowl"]]

    models = client.search_logged_models([experiment.experiment_id])
    assert sorted(m.name for m in models) == sorted(f"{recipe}-seed-{seed}" for recipe in RECIPES for seed in SEEDS)
    for model in models:  # the evaluated network's metrics travel with the model
        run = client.get_run(model.source_run_id)
        assert {m.key: m.value for m in model.metrics}["test_accuracy"] == run.data.metrics["test_accuracy"]


def test_a_fresh_clone_records_its_own_pipeline_run(built_project, tmp_path):
    """A clone of a repository whose dvc.lock is complete, its outputs in the
    DVC cache (as after `dvc pull`): every stage's outputs come back from the
    cache, and the track stage, whose note is neither cached nor committed,
    still writes the pipeline run into the clone's own store and prints its link."""
    assert run(["git", "check-ignore", "reports/moons/tracked.json"], built_project).returncode == 0
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(built_project), str(clone)], tmp_path)
    shutil.copy(built_project / "dvc.lock", clone / "dvc.lock")  # committed, as the project commits it
    run(["git", "add", "dvc.lock"], clone)
    run(["git", "commit", "-qm", "a pipeline run"], clone)
    run(["dvc", "cache", "dir", "--local", str(built_project / ".dvc/cache")], clone)  # as after dvc pull
    result = run(["dvc", "repro"], clone)
    ran = set(re.findall(r"Running stage '([^']+)'", result.stdout))
    assert ran == {"track@moons"}, result.stdout
    assert "track moons: the comparison in MLflow: http://127.0.0.1:5000/#/experiments/" in result.stdout
    runs = mlflow_client(clone).search_runs([mlflow_client(clone).get_experiment_by_name("moons").experiment_id],
                                            "tags.kind = 'pipeline'")
    assert len(runs) == 1
    assert json.loads((clone / "reports/moons/tracked.json").read_text()) == {"dataset": "moons", "store": "mlflow.db"}
    assert run(["git", "status", "--porcelain"], clone).stdout == ""  # the same note: dvc.lock unchanged
    assert "Data and pipelines are up to date" in run(["dvc", "repro"], clone).stdout  # and then a no-op


def test_a_copy_of_the_project_records_into_its_own_artifacts_not_the_originals(built_project, tmp_path):
    """cp -a of a project brings mlflow.db along, whose experiments keep their
    artifacts by absolute path: the copy's first record points them at its own
    mlartifacts/ (which the copy brought too), says so once, and leaves the
    original's store and files as they were."""
    copy = tmp_path / "copy"
    shutil.copytree(built_project, copy, symlinks=True)
    before = sorted(path.relative_to(built_project) for path in (built_project / "mlartifacts").rglob("*"))
    original_db = (built_project / "mlflow.db").read_bytes()
    first = run([sys.executable, "-m", "pipeline.stages.track", "moons"], copy)
    assert (f"mlflow.db was copied from {built_project.resolve()}: its runs now keep their artifacts in "
            f"{copy.resolve() / 'mlartifacts'}") in first.stdout.splitlines()
    assert sorted(path.relative_to(built_project) for path in (built_project / "mlartifacts").rglob("*")) == before
    assert (built_project / "mlflow.db").read_bytes() == original_db
    client = mlflow_client(copy)
    experiments = client.search_experiments()
    assert all(e.artifact_location.startswith(copy.resolve().as_uri() + "/") or
               e.artifact_location.startswith(f"{copy.resolve()}/") for e in experiments), experiments
    runs = client.search_runs([e.experiment_id for e in experiments])
    assert len(runs) > 10 and all(r.info.artifact_uri.startswith(copy.resolve().as_uri() + "/") for r in runs)
    newest = max(runs, key=lambda r: r.info.start_time)
    assert {a.path for a in client.list_artifacts(newest.info.run_id)}  # its files are where the copy looks
    again = run([sys.executable, "-m", "pipeline.stages.track", "moons"], copy)
    assert "was copied" not in again.stdout


def test_the_record_needs_no_store_but_the_one_it_writes(built_project, tmp_path):
    """No stage reads MLflow back: with mlflow.db gone, every stage (forced) still runs, and
    track writes the whole tree again into the new store; the stages' files come out the same."""
    outputs = ["models/moons/l2/model.pt", "models/moons/l2/training.json", "metrics/moons/l2/seed_0.json",
               "reports/moons/summary.json"]
    before = {name: (built_project / name).read_bytes() for name in outputs}
    store = built_project / "mlflow.db"
    store.rename(tmp_path / "mlflow.db")
    try:
        result = run(["dvc", "repro", "--force", "--single-item", "train@moons-l2", "evaluate@moons-l2", "report@moons",
                      "track@moons"], built_project)
        assert {name: (built_project / name).read_bytes() for name in outputs} == before  # byte for byte
        assert "track moons: the comparison in MLflow: http://127.0.0.1:5000/#/experiments/" in result.stdout
        client = mlflow_client(built_project)
        runs = client.search_runs([client.get_experiment_by_name("moons").experiment_id])
        assert sorted(r.data.tags["kind"] for r in runs).count("seed") == len(RECIPES) * len(SEEDS)
        assert {r.info.status for r in runs} == {"FINISHED"}
    finally:
        store.unlink(missing_ok=True)
        (tmp_path / "mlflow.db").rename(store)


def test_track_says_in_one_line_when_the_store_is_unreachable(built_project):
    result = run([sys.executable, "-m", "pipeline.stages.track", "moons"], built_project,
                 env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, check=False)
    assert result.returncode == 1 and result.stderr.startswith(
        "error: cannot reach the MLflow tracking store at http://127.0.0.1:9"), result.stderr
    assert len(result.stderr.splitlines()) == 1


def seed_runs(client) -> list:
    experiment = client.get_experiment_by_name("moons")
    return client.search_runs([experiment.experiment_id], "tags.kind = 'seed'") if experiment else []


def test_a_tracking_server_killed_mid_track_is_one_line_and_its_runs_end_killed(built_project, tmp_path):
    """kill -9 of a real `mlflow server` while track logs to it: one line
    naming the server, exit 1, no tracked.json; once the server is back, the
    next track ends the runs the dead one left RUNNING as KILLED."""
    from mlflow import MlflowClient

    from pipeline.core.errors import LOST_CONNECTION
    from pipeline.tracking.owners import KILLED

    store = f"sqlite:///{tmp_path / 'server.db'}"
    tracked = built_project / "reports/moons/tracked.json"
    kept = tracked.read_bytes()
    tracked.unlink()
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    try:
        with mlflow_server(store, tmp_path / "server.log", tmp_path, "--artifacts-destination",
                           str(tmp_path / "artifacts")) as (url, ready, server):
            ready()
            track = subprocess.Popen([sys.executable, "-m", "pipeline.stages.track", "moons"], cwd=built_project,
                                     env=environment | {"MLFLOW_TRACKING_URI": url}, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 120
            while not seed_runs(MlflowClient(store)):  # logging has begun
                assert time.monotonic() < deadline and track.poll() is None, track.communicate()
                time.sleep(0.2)
            os.killpg(server.pid, signal.SIGKILL)  # the server and its uvicorn workers
            _, stderr = track.communicate(timeout=120)
        lost = "|".join(map(re.escape, LOST_CONNECTION.values()))  # where the kill fell: refused, reset, cut off...
        assert track.returncode == 1 and re.fullmatch(
            f"error: the MLflow tracking server {url} stopped answering \\(({lost})\\): "
            "start it again and rerun \\(the runs it could not end show KILLED after the next run\\)\n", stderr), stderr
        assert not tracked.exists()
        left = [r.info.run_id for r in seed_runs(MlflowClient(store)) if r.info.status == "RUNNING"]
        assert left  # the dead server could end none of them
        with mlflow_server(store, tmp_path / "again.log", tmp_path, "--artifacts-destination",
                           str(tmp_path / "artifacts")) as (url, ready, _):
            ready()
            run([sys.executable, "-m", "pipeline.stages.track", "moons"], built_project,
                env={"MLFLOW_TRACKING_URI": url})
        client = MlflowClient(store)
        assert {client.get_run(run_id).info.status for run_id in left} == {"KILLED"}
        assert all(client.get_run(run_id).data.tags[KILLED].startswith(f"owner process {track.pid} ")
                   for run_id in left)
    finally:
        tracked.write_bytes(kept)


def test_logged_model_loads_and_has_a_signature(built_project):
    import mlflow.pyfunc
    import numpy as np

    client = mlflow_client(built_project)
    experiment = client.get_experiment_by_name("moons")
    model = client.search_logged_models([experiment.experiment_id], max_results=1)[0]
    mlflow.set_tracking_uri(f"sqlite:///{built_project / 'mlflow.db'}")  # unset after the test (conftest)
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


def test_override_reruns_only_the_recipe_that_uses_it(built_project):
    result = run(["dvc", "exp", "run", "-S", "suite.l2.l2.strength=0.3"], built_project)
    ran = set(re.findall(r"Running stage '([^']+)'", result.stdout))
    assert ran == {"validate", "train@moons-l2", "evaluate@moons-l2", "report@moons", "track@moons"}, result.stdout
    params = yaml.safe_load((built_project / "params.yaml").read_text())
    assert params["suite"]["l2"]["l2"]["strength"] == 0.3
    shown = json.loads(run(["dvc", "exp", "show", "--json"], built_project).stdout)
    assert "0.3" in json.dumps(shown)  # the experiment is listed with its param
    assert "test_accuracy" in json.dumps(shown)
    # The docs' comparison of experiments (Changing parameters) fits a terminal of 80 columns, no column cut
    # ("…"), and shows the param set and the recipe whose test accuracy moved (l2's, here), nothing else.
    compare = re.search(r"^(dvc exp show --only-changed --drop '[^']+')", (ROOT / "docs/parameters.md").read_text(),
                        re.M)
    assert compare, "docs/parameters.md gives no `dvc exp show --only-changed --drop ...` command"
    table = run([*shlex.split(compare.group(1)), "--no-pager"], built_project, env={"COLUMNS": "80"}).stdout
    lines = table.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in table, table
    assert {"l2", "suite.l2.l2.strength"} <= set(lines[1].split()), table


def test_a_key_no_stage_reads_still_stops_the_pipeline(built_project):
    """`seed` for `seeds`: no stage reads it, so only the validate stage, which depends on every param, runs."""
    result = run(["dvc", "exp", "run", "-S", "+seed=[1]"], built_project, check=False)
    assert result.returncode != 0
    assert result.stderr.startswith("error: params.yaml: seed: unknown key\n"), result.stderr
    assert set(re.findall(r"Running stage '([^']+)'", result.stdout)) == {"validate"}
