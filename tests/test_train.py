"""Ad-hoc runs: `python -m pipeline.train` composes conf/train.yaml with Hydra
overrides, trains every seed at once and logs each as an MLflow run of the
experiment <dataset>-adhoc."""

from __future__ import annotations

import re
import sys

from conftest import mlflow_client, run

RUN_URL = re.compile(r"http://127\.0\.0\.1:5000/#/experiments/(\w+)/runs/(\w+)")


def _assert_one_error_line(result, *fragments):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(fragment in lines[0] for fragment in fragments), lines[0]


def test_adhoc_run_with_hydra_overrides_is_tracked_per_seed(project):
    result = run(
        [sys.executable, "-m", "pipeline.train", "dataset=circles", "regularization=[l2,dropout]",
         "trainer.max_steps=40", "trainer.eval_every=20", "regularization.l2.strength=0.5", "seeds=[0,1,2]"],
        project,
    )
    assert "ad-hoc circles/l2+dropout" in result.stdout
    assert "test accuracy over 3 seeds" in result.stdout and "95% interval [" in result.stdout
    assert "step/s" not in result.stdout  # no progress bar when stdout is not a terminal
    client = mlflow_client(project)
    assert client.get_experiment_by_name("circles") is None  # the pipeline's experiment stays the pipeline's
    experiment = client.get_experiment_by_name("circles-adhoc")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1", "2"]
    for r in runs:
        assert r.info.run_name == "l2+dropout" and r.info.status == "FINISHED"
        assert r.data.tags["source"] == "adhoc"
        assert r.data.params["regularization.l2.strength"] == "0.5"
        assert r.data.params["regularization.dropout.keep_prob.1"] == "0.5"
        assert 0.5 <= r.data.metrics["test_accuracy"] <= 1.0
        assert [m.step for m in client.get_metric_history(r.info.run_id, "train_loss")] == [0, 20, 40]
        assert {a.path for a in client.list_artifacts(r.info.run_id, "evaluation")} >= {
            "evaluation/decision_boundary.png", "evaluation/learning_curves.png"}
    # one link per seed, to the runs just made, and how to serve them
    links = RUN_URL.findall(result.stdout)
    assert sorted(links) == sorted((experiment.experiment_id, r.info.run_id) for r in runs)
    assert f"mlflow ui --backend-store-uri sqlite:///{project / 'mlflow.db'}" in result.stdout
    assert not (project / "models").exists()  # ad-hoc runs write nothing into the repository


def test_adhoc_run_rejects_an_unknown_key(project):
    _assert_one_error_line(run([sys.executable, "-m", "pipeline.train", "trainer.lrr=0.1"], project, check=False),
                           "trainer.lrr")


def test_adhoc_run_rejects_a_bad_value(project):
    result = run([sys.executable, "-m", "pipeline.train", "regularization=l2", "regularization.l2.strength=-1"],
                 project, check=False)
    _assert_one_error_line(result, "regularization.l2.strength", "greater than or equal to 0")
