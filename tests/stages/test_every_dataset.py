"""Every offline dataset through one real `dvc exp run`: its own module, so
that it runs beside the rest of the pipeline's tests rather than after them."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run

# The loss slice's grid at 11 x 11, not 41 x 41: on mnist5k's 784 inputs the
# full grid is most of this test's time; tests/stages/test_pipeline.py checks the full one.
FEWER_SLICE_POINTS = ["-S", "analysis.loss_landscape.points=11"]


@pytest.mark.slow
def test_every_offline_dataset_runs_through_dvc(project):
    """digits, mnist5k and the user-file examples in one `dvc exp run` of their
    reports (moons, the project's own, is the other tests'), and one into MLflow."""
    added = {"digits": "digits", "mnist5k": "mnist5k", "iris": "csv", "cancer": "npz"}
    overrides = [arg for name, config in added.items() for arg in ("-S", f"+dataset@datasets.{name}={config}")]
    targets = [f"report@{name}" for name in added] + ["track@digits"]  # image data: no boundary to view
    result = run(["dvc", "exp", "run", *overrides, "-S", "~paths.l2", "-S", "seeds=[1]", *FEWER_SLICE_POINTS,
                  *targets], project)
    ran = set(re.findall(r"Running stage '([^']+)'", result.stdout))
    assert set(targets) <= ran and not any(stage.endswith("@moons") for stage in ran), result.stdout
    assert "track digits: the comparison in MLflow: http://127.0.0.1:5000/#/experiments/" in result.stdout
    expected = {"digits": (10, 450, True), "mnist5k": (10, 1500, True), "iris": (3, 30, False),
                "cancer": (2, 114, False)}
    for name, (classes, test_size, images) in expected.items():
        metrics = json.loads((project / f"metrics/{name}/l2/seed_1.json").read_text())
        assert len(metrics["per_class"]) == classes
        assert sum(c["support"] for c in metrics["per_class"].values()) == test_size
        assert metrics["train"]["accuracy"] > 1.5 / classes, name  # learned something in 60 steps
        figures = sorted(p.name for p in (project / f"plots/{name}/l2/seed_1").iterdir())
        image_figures = ["first_layer_weights.png", "misclassified.png"] if images else []
        assert figures == sorted(["confusion_matrix.png", "learning_curves.png", "weight_histogram.png",
                                   *image_figures]), name
        report = sorted(p.name for p in (project / f"reports/{name}/figures").iterdir())
        over_training = ["loss_landscapes.png", "weight_histograms.png", "weight_statistics_during_training.png",
                         "weights_during_training.png"]
        assert report == (["first_layer_weights.png", *over_training] if images else over_training), name
