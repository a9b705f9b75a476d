"""Ad-hoc runs: `python -m pipeline.train` composes conf/train.yaml with Hydra
overrides, trains every seed at once and logs each as an MLflow run of the
experiment <dataset>-adhoc; `-m` sweeps, one Hydra job per value."""

from __future__ import annotations

import os
import pty
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import BIN, gone, make_project, mlflow_client, run

RUN_URL = re.compile(r"http://127\.0\.0\.1:5000/#/experiments/(\w+)/runs/(\w+)")
FAST = ["trainer.max_steps=20", "trainer.eval_every=10"]


def _assert_one_error_line(result, *fragments):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(fragment in lines[0] for fragment in fragments), lines[0]


def _assert_hydra_wrote_nothing(project):
    written = [path for pattern in ("outputs", "multirun", ".hydra", "*.log") for path in project.rglob(pattern)]
    assert not written, written


def test_on_a_terminal_that_reports_no_size_the_bar_shows_the_time_left(project):
    """A pseudo-terminal as `script` or a container's tty opens it: 0 columns."""
    primary, secondary = pty.openpty()
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    environment.pop("COLUMNS", None)
    with subprocess.Popen([sys.executable, "-m", "pipeline.train", "trainer.max_steps=40", "trainer.eval_every=20"],
                          cwd=project, env=environment, stdout=secondary, stderr=subprocess.PIPE) as process:
        os.close(secondary)
        assert os.get_terminal_size(primary).columns == 0
        output = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=120) == 0, process.stderr.read()
    os.close(primary)
    text = output.decode()
    assert re.search(r"training: 100%\|█+\| 40/40 \[\d\d:\d\d<\d\d:\d\d", text), text  # elapsed<left
    assert "ad-hoc moons/baseline" in text


def test_adhoc_run_with_hydra_overrides_is_tracked_per_seed(project):
    result = run(
        [sys.executable, "-m", "pipeline.train", "dataset=circles", "regularization=[l2,dropout]",
         "trainer.max_steps=40", "trainer.eval_every=20", "regularization.l2.strength=0.5", "seeds=[0,1,2]"],
        project,
    )
    assert "ad-hoc circles/l2+dropout" in result.stdout
    assert "test accuracy over 3 seeds" in result.stdout and "95% interval [" in result.stdout
    assert "step/s" not in result.stdout and "\r" not in result.stdout  # no bar when stdout is not a terminal,
    assert "training: 40/40 steps (100%)" in result.stdout  # but lines
    client = mlflow_client(project)
    assert client.get_experiment_by_name("circles") is None  # the pipeline's experiment stays the pipeline's
    experiment = client.get_experiment_by_name("circles-adhoc")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1", "2"]
    for r in runs:
        assert r.info.run_name == f"l2+dropout · seed {r.data.tags['seed']}" and r.info.status == "FINISHED"
        assert r.data.tags["source"] == "adhoc"
        assert r.data.params["regularization.l2.strength"] == "0.5"
        assert r.data.params["regularization.dropout.keep_prob.1"] == "0.5"
        assert 0.5 <= r.data.metrics["test_accuracy"] <= 1.0
        assert [m.step for m in client.get_metric_history(r.info.run_id, "curve/train_loss")] == [0, 20, 40]
        cards = {a.path.split("/")[-1].split("+")[0] for a in client.list_artifacts(r.info.run_id, "images")}
        assert {"decision_boundary", "learning_curves", "boundary_during_training"} <= cards
    # one link per seed, to the runs just made, and how to serve them
    links = RUN_URL.findall(result.stdout)
    assert sorted(links) == sorted((experiment.experiment_id, r.info.run_id) for r in runs)
    assert f"mlflow ui --backend-store-uri sqlite:///{project / 'mlflow.db'}" in result.stdout
    assert not (project / "models").exists()  # ad-hoc runs write nothing into the repository
    _assert_hydra_wrote_nothing(project)


def _sweep_runs(project) -> tuple[object, list]:
    """The one parent run of the project's sweeps, and the runs nested under it."""
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("adhoc-sweeps").experiment_id
    parents = client.search_runs([experiment], "tags.kind = 'sweep'")
    assert len(parents) == 1, [p.info.run_name for p in parents]
    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    assert len(client.search_runs([experiment])) == 1 + len(children)  # nothing else in the sweeps' experiment
    return parents[0], children


def test_a_parallel_sweep_runs_one_job_per_recipe_nested_under_one_run(project):
    result = run([sys.executable, "-m", "pipeline.train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                  "regularization=[l1],[l2]", "seeds=[0,1]", *FAST], project)
    assert "ad-hoc moons/l1" in result.stdout and "ad-hoc moons/l2" in result.stdout
    parent, runs = _sweep_runs(project)
    assert parent.info.status == "FINISHED" and parent.info.run_name.startswith("sweep ")
    assert parent.data.tags["launcher"] == "joblib"
    assert sorted((r.data.tags["recipe"], r.data.tags["seed"]) for r in runs) == [
        ("l1", "0"), ("l1", "1"), ("l2", "0"), ("l2", "1")]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert all(0.0 <= r.data.metrics["test_accuracy"] <= 1.0 for r in runs)
    assert mlflow_client(project).get_experiment_by_name("moons-adhoc") is None  # a sweep's runs are the sweep's
    assert len(RUN_URL.findall(result.stdout)) == 4 + 1  # each run's, then the sweep's
    assert result.stdout.strip().splitlines()[-1] == (
        f"sweep: 4 runs nested under http://127.0.0.1:5000/#/experiments/{parent.info.experiment_id}"
        f"/runs/{parent.info.run_id}")
    _assert_hydra_wrote_nothing(project)


def _endless_parallel_sweep(project) -> tuple[subprocess.Popen, list[int]]:
    """A joblib sweep of two jobs (two seeds each) training until stopped, once
    its four runs are RUNNING; and its job processes' pids (the runs' owners)."""
    from pipeline.tracking.owners import OWNER, fields

    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    sweep = subprocess.Popen([sys.executable, "-m", "pipeline.train", "-m", "hydra/launcher=joblib",
                              "hydra.launcher.n_jobs=2", "regularization=[l1],[l2]", "seeds=[0,1]",
                              "trainer.max_steps=100000000", "trainer.eval_every=100"],
                             cwd=project, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and sweep.poll() is None:
        client = mlflow_client(project)
        experiment = client.get_experiment_by_name("adhoc-sweeps")
        runs = client.search_runs([experiment.experiment_id], "tags.kind = 'seed'") if experiment else []
        if len(runs) == 4 and {r.info.status for r in runs} == {"RUNNING"}:
            return sweep, sorted({int(fields(r.data.tags[OWNER])["pid"]) for r in runs})
        time.sleep(0.5)
    sweep.kill()
    raise AssertionError(f"the sweep never trained: {sweep.communicate()}")


def test_a_stopped_parallel_sweep_leaves_no_process_and_no_run_running(project, tmp_path):
    """Ctrl-C: joblib kills its workers outright, and the launcher ends their
    runs KILLED, saying why (they stayed RUNNING). kill -9 of the launcher:
    its workers die with it (they trained on), and the next run of the
    project, in any experiment, ends every run of the sweep KILLED."""
    from pipeline.tracking.owners import KILLED

    sweep, jobs = _endless_parallel_sweep(project)
    assert len(jobs) == 2 and sweep.pid not in jobs  # the jobs run in joblib's workers
    sweep.send_signal(signal.SIGINT)
    _, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130 and stderr.splitlines()[-1] == "error: interrupted (Ctrl-C)", stderr
    parent, runs = _sweep_runs(project)
    assert parent.info.status == "FAILED"
    assert sorted(r.info.status for r in runs) == ["KILLED"] * 4
    assert {r.data.tags[KILLED].split(" on ")[0] for r in runs} == {f"owner process {pid}" for pid in jobs}
    assert gone(*jobs, within=10)

    project = make_project(tmp_path / "second")
    sweep, jobs = _endless_parallel_sweep(project)
    sweep.kill()
    sweep.wait(timeout=60)
    assert gone(*jobs, within=30), "the sweep's workers outlived it"
    parent, runs = _sweep_runs(project)
    assert {r.info.status for r in [parent, *runs]} == {"RUNNING"}  # no process could end them
    run([sys.executable, "-m", "pipeline.train", "dataset=circles", "seeds=[0]", *FAST], project)
    parent, runs = _sweep_runs(project)
    assert {r.info.status for r in [parent, *runs]} == {"KILLED"}
    host = socket.gethostname()
    assert parent.data.tags[KILLED] == f"owner process {sweep.pid} on {host} ended without ending the run"
    assert {r.data.tags[KILLED] for r in runs} == {f"owner process {pid} on {host} ended without ending the run"
                                                   for pid in jobs}


def test_a_sweep_through_submitit_nests_its_jobs_runs(project):
    """submitit's local executor: each job a process of its own, started and
    awaited through submitit's files, the code path of submitit_slurm."""
    result = run([sys.executable, "-m", "pipeline.train", "-m", "hydra/launcher=submitit_local",
                  "regularization=[l1],[l2]", *FAST], project)
    parent, runs = _sweep_runs(project)
    assert parent.info.status == "FINISHED" and parent.data.tags["launcher"] == "submitit_local"
    assert sorted((r.data.tags["recipe"], r.data.tags["seed"], r.info.status) for r in runs) == [
        ("l1", "0", "FINISHED"), ("l2", "0", "FINISHED")]
    assert all(0.0 <= r.data.metrics["test_accuracy"] <= 1.0 for r in runs)
    assert result.stdout.strip().splitlines()[-1].startswith("sweep: 2 runs nested under http://")
    # submitit's folder (pickled jobs, their logs) is in the temporary sweep directory, gone
    assert run(["git", "status", "--porcelain"], project).stdout == ""
    assert not list(project.rglob(".submitit"))
    _assert_hydra_wrote_nothing(project)


@pytest.mark.parametrize("arguments", [["trainer.lrr=0.1"], ["-m", "trainer.lrr=0.1,0.2"]], ids=["run", "sweep"])
def test_adhoc_run_rejects_an_unknown_key(project, arguments):
    _assert_one_error_line(run([sys.executable, "-m", "pipeline.train", *arguments], project, check=False),
                           "trainer.lrr")


# A sweep's failing job through submitit, whose jobs are processes of their own, is the harder case of the
# two launchers' (the basic launcher's jobs fail in the launching process): one test covers the sweep's run.
@pytest.mark.parametrize("arguments", [["regularization=l2", "regularization.l2.strength=-1"],
                                       ["-m", "hydra/launcher=submitit_local", "regularization=l2",
                                        "regularization.l2.strength=-1"]],
                         ids=["run", "submitit-sweep"])
def test_adhoc_run_rejects_a_bad_value(project, arguments):
    result = run([sys.executable, "-m", "pipeline.train", *arguments], project, check=False)
    _assert_one_error_line(result, "regularization.l2.strength", "greater than or equal to 0")
    if "-m" in arguments:  # the sweep's run failed with its job
        parent, runs = _sweep_runs(project)
        assert parent.info.status == "FAILED" and runs == []
    _assert_hydra_wrote_nothing(project)


@pytest.mark.parametrize("signum, exit_code, line", [(signal.SIGTERM, 143, "error: terminated (SIGTERM)"),
                                                     (signal.SIGINT, 130, "error: interrupted (Ctrl-C)")])
def test_a_signal_stops_the_run_with_one_line_and_failed_runs(project, signum, exit_code, line):
    """Mid-training, with its MLflow runs open: the process says why it
    stopped, exits as a shell expects, and leaves no run RUNNING."""
    import time

    client = mlflow_client(project)  # the store made before the run starts: no two processes creating it
    process = subprocess.Popen([sys.executable, "-m", "pipeline.train", "trainer.max_steps=1000000",
                                "trainer.eval_every=1000"], cwd=project, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"})
    try:
        deadline, running = time.monotonic() + 120, []
        while not running and time.monotonic() < deadline:
            time.sleep(0.5)
            experiment = client.get_experiment_by_name("moons-adhoc")
            running = experiment and client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
        assert running, "the run never started"
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == exit_code and stderr.strip().splitlines() == [line], stderr
    runs = client.search_runs([experiment.experiment_id])
    assert runs and {r.info.status for r in runs} == {"FAILED"}
