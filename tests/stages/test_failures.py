"""Reproducibility, and failures that must end in one error line, a non-zero
exit, no outputs and, where runs were open, FAILED or KILLED MLflow runs."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, in_project, mlflow_client, obeying_file_permissions, prepare_data, run

from pipeline.config import load_params
from pipeline.data.splits import split
from pipeline.engine.fit import Member, fit
from pipeline.tracking.store import connect


def test_same_params_give_the_same_weights_bit_for_bit():
    params = load_params(ROOT / "params.yaml")
    trainer = params.trainer.model_copy(update={"max_steps": 200})
    splits = split(params.dataset("moons").source.load(), params.dataset("moons").split)
    for recipe in ("baseline", "dropout", "augmentation"):
        members = [Member(seed, params.recipe(recipe)) for seed in (0, 1)]
        first = fit(members, params.model, trainer, splits).net.state_dict()
        second = fit(members, params.model, trainer, splits).net.state_dict()
        assert all(torch.equal(first[k], second[k]) for k in first), recipe


def test_the_accelerator_auto_is_the_cpu_here_bit_for_bit():
    # On a machine without a GPU, auto must train exactly what the CPU trains.
    params = load_params(ROOT / "params.yaml")
    assert params.trainer.accelerator == "auto"
    splits = split(params.dataset("moons").source.load(), params.dataset("moons").split)
    for recipe in ("dropout", "batch_norm", "early_stopping"):
        members = [Member(seed, params.recipe(recipe)) for seed in (0, 1)]
        weights = {accelerator: fit(members, params.model, params.trainer.model_copy(
                       update={"max_steps": 200, "accelerator": accelerator}), splits).net.state_dict()
                   for accelerator in ("auto", "cpu")}
        assert all(torch.equal(weights["auto"][k], weights["cpu"][k]) for k in weights["cpu"]), recipe


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="this machine has a GPU")
def test_the_gpu_accelerator_without_a_gpu_is_one_clear_line(project):
    prepare_data(project)
    _set_params(project, accelerator="gpu")
    result = train(project)
    assert result.returncode == 1 and result.stderr == (
        "error: trainer.accelerator=gpu but no GPU is available (PyTorch sees no CUDA or MPS device): use "
        "trainer.accelerator=auto or cpu\n"), result.stderr
    assert not (project / "models/moons/baseline").exists()
    assert not (project / "mlflow.db").exists()  # training writes files only: track records finished pipeline runs


def _set_params(project, **trainer):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["trainer"].update(trainer)
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def _assert_one_error_line(result, *fragments):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def train(project, recipe="baseline", **env):
    return run([sys.executable, "-m", "pipeline.stages.train", "moons", recipe], project, env=env or None,
               check=False)


def test_diverging_loss_fails_the_stage_and_every_run(project):
    prepare_data(project)
    _set_params(project, optimizer="sgd", lr=1e10)
    _assert_one_error_line(train(project), "training diverged (seed 0)", "lower trainer.lr")
    assert not (project / "models/moons/baseline").exists()
    assert not (project / "mlflow.db").exists()  # training writes files only: track records finished pipeline runs


def test_a_strength_out_of_all_proportion_is_one_line_not_a_normal_run(project):
    # Adam's squared gradient overflows float32 at L2 1e30: the weights never
    # moved, and the stage used to report the untrained networks as trained
    prepare_data(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["suite"]["l2"]["l2"]["strength"] = 1e30
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = train(project, "l2")
    _assert_one_error_line(result)
    assert result.stderr == (
        "error: the regularization penalty is 1.4e+30 times the data loss at step 0 (seed 0): the network can only "
        "learn zero weights; lower the strengths (l2.strength 1e+30)\n")
    assert not (project / "models/moons/l2").exists()
    assert not (project / "mlflow.db").exists()  # training writes files only: track records finished pipeline runs


def test_training_needs_no_tracking_store_and_the_adhoc_run_says_when_it_is_unreachable(project):
    prepare_data(project)
    _set_params(project, max_steps=20)
    assert train(project, MLFLOW_TRACKING_URI="http://127.0.0.1:9").returncode == 0  # the stage only writes files
    result = run([sys.executable, "-m", "pipeline.train", "dataset=moons"], project,
                 env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}, check=False)
    _assert_one_error_line(result, "cannot reach the MLflow tracking store at http://127.0.0.1:9")


def read_only_store(project, tmp_path):
    """The project's own store, after an earlier run, made read-only."""
    in_project(project, connect)
    store = project / "mlflow.db"
    store.chmod(0o444)
    return {}, (f"the MLflow store {store} is read-only (attempt to write a readonly database): "
                "make it writable or set MLFLOW_TRACKING_URI")


def store_in_a_read_only_directory(project, tmp_path):
    """SQLite can read this store, but not create its journal beside it."""
    from mlflow.tracking import MlflowClient

    directory = tmp_path / "store"
    directory.mkdir()
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # creates the store
    directory.chmod(0o555)
    return {"MLFLOW_TRACKING_URI": uri}, (f"the MLflow store {directory / 'mlflow.db'} is read-only (its directory "
                                          f"is read-only, and SQLite writes its journal there): make {directory} "
                                          "writable or set MLFLOW_TRACKING_URI")


@pytest.mark.parametrize("command, make_store", [
    ([sys.executable, "-m", "pipeline.train", "dataset=moons"], read_only_store),
    ([sys.executable, "-m", "pipeline.train", "dataset=moons"], store_in_a_read_only_directory),
], ids=["file", "directory"])
def test_a_store_sqlite_cannot_write_is_one_clear_line_before_any_work(project, tmp_path, command, make_store):
    prepare_data(project)
    env, line = make_store(project, tmp_path)
    result = run(obeying_file_permissions(command), project, env=env, check=False)
    assert result.returncode == 1 and result.stderr == f"error: {line}\n", result.stderr
    assert not (project / "models").exists() and not (project / "mlartifacts").exists()


def test_missing_split_data_is_one_clear_line(project):
    _assert_one_error_line(train(project), "data/split/moons/train.npz is missing")


def test_corrupt_split_file_is_one_clear_line(project):
    prepare_data(project)
    (project / "data/split/moons/dev.npz").write_bytes(b"not a zip file")
    result = run([sys.executable, "-m", "pipeline.stages.evaluate", "moons", "baseline"], project, check=False)
    _assert_one_error_line(result, "data/split/moons/dev.npz is corrupt")


def test_split_sizes_that_leave_nothing_to_train_on_are_one_clear_line(project, monkeypatch, capsys):
    from pipeline.stages import split as split_stage

    prepare_data(project)
    before = (project / "data/split/moons/train.npz").read_bytes()
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"]["moons"]["split"].update(dev=60, test=60)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit) as exit_status:
        split_stage.main(["moons"])
    assert exit_status.value.code == 1
    error = capsys.readouterr().err
    assert error == "error: dev (60) and test (60) take all 120 examples: nothing is left to train on\n"
    assert (project / "data/split/moons/train.npz").read_bytes() == before  # the last good split stays



def test_runs_of_a_killed_process_end_killed_when_the_next_one_logs(project, monkeypatch):
    """SIGKILL leaves a process no chance to end its runs (an ad-hoc run
    opens them before training): they stay RUNNING until the next process
    that logs into the experiment finds their owner gone and ends them
    KILLED, saying why. Runs whose owner lives, or lives on another machine,
    are left alone; a pid now held by another process is not taken for the owner."""
    import multiprocessing
    import os
    import signal
    import socket
    import time

    from pipeline import train as adhoc
    from pipeline.tracking.owners import KILLED, OWNER, owner_tag

    # The run is a fork of this process, as DVC's stages are forks of the warm worker
    # (pipeline/warm.py), without its seconds of imports. No pooled SQLite connection
    # may pass into it: each call opens its own.
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
    client = mlflow_client(project)
    client.search_experiments()  # the store made before the run starts: no two processes creating it
    endless = ["dataset=moons", "seeds=[0,1]", "trainer.max_steps=1000000", "trainer.eval_every=1000"]
    process = multiprocessing.get_context("fork").Process(target=in_project, args=(project, lambda: adhoc.main(endless)))
    process.start()
    try:
        deadline, runs = time.monotonic() + 60, []
        # training has begun once the process owns its two seeds' runs
        while len([r for r in runs if OWNER in r.data.tags]) < 2 and process.is_alive():
            assert time.monotonic() < deadline, "the run never started training"
            time.sleep(0.1)
            experiment = client.get_experiment_by_name("moons-adhoc")
            runs = client.search_runs([experiment.experiment_id]) if experiment else []
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=30)
    finally:
        process.kill()
    assert process.exitcode == -signal.SIGKILL
    killed = [r.info.run_id for r in runs]
    assert sorted(r.info.run_name for r in runs) == ["baseline · seed 0", "baseline · seed 1"]
    assert {client.get_run(run_id).info.status for run_id in killed} == {"RUNNING"}

    mine = owner_tag()[OWNER]  # this test's own process: alive
    owners = {"alive": mine, "elsewhere": mine.replace("host=", "host=elsewhere-", 1),
              "pid reused": mine.replace(" start=", " start=1", 1)}
    others = {name: client.create_run(experiment.experiment_id, run_name=name, tags={OWNER: owner}).info.run_id
              for name, owner in owners.items()}

    run([sys.executable, "-m", "pipeline.train", "dataset=moons", "seeds=[2]", "trainer.max_steps=60"], project)

    host = socket.gethostname()
    for run_id in killed:
        killed_run = client.get_run(run_id)
        assert killed_run.info.status == "KILLED"
        assert killed_run.data.tags[KILLED] == f"owner process {process.pid} on {host} ended without ending the run"
    statuses = {name: client.get_run(run_id).info.status for name, run_id in others.items()}
    assert statuses == {"alive": "RUNNING", "elsewhere": "RUNNING", "pid reused": "KILLED"}
    assert client.get_run(others["pid reused"]).data.tags[KILLED] == (
        f"owner process {os.getpid()} on {host} ended without ending the run")
    (latest,) = client.search_runs([experiment.experiment_id], "tags.seed = '2'")
    assert latest.info.status == "FINISHED"


@contextlib.contextmanager
def full_disk(directory: Path, size: str = "16k"):
    """A real, nearly full file system at directory: a tmpfs of that size (root only, as CI runs)."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)


def test_a_full_disk_is_one_line_and_leaves_no_half_written_output(project):
    """The train stage's outputs on a 16 KB file system: its first file does
    not fit. Before, a traceback of hundreds of lines."""
    prepare_data(project)
    with full_disk(project / "models"):
        result = train(project, "l2")
        left = sorted(path.name for path in (project / "models").rglob("*") if path.is_file())
    _assert_one_error_line(result, "no space left on the device", "free some space and rerun")
    assert left == [], left  # nothing half-written, no temporary file left behind


def test_a_read_only_output_directory_is_one_line(project):
    prepare_data(project)
    (project / "models").mkdir()
    (project / "models").chmod(0o555)
    try:
        result = run(obeying_file_permissions([sys.executable, "-m", "pipeline.stages.train", "moons", "l2"]), project,
                     check=False)
    finally:
        (project / "models").chmod(0o755)
    _assert_one_error_line(result, "permission denied: models/moons", "make it writable (or readable) and rerun")
    assert not list((project / "models").iterdir())
