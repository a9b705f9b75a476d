"""The warm launcher behaves like `python -m MODULE`: output, exit status,
working directory and environment are the client's; code changes get a new
worker; REGULARIZATION_LAB_WARM=0 runs in-process."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import run


def warm(project: Path, *args: str, env: dict | None = None):
    return run([sys.executable, "-m", "pipeline.warm", *args], project, env=env, check=False)


def socket_of(project: Path) -> Path:
    code = "from pipeline.warm import socket_path; print(socket_path())"
    return Path(run([sys.executable, "-c", code], project).stdout.strip())


def test_warm_runs_behave_like_direct_runs(project):
    first = warm(project, "pipeline.stages.fetch", "moons")  # starts the worker
    assert first.returncode == 0, first.stderr
    assert first.stdout == "fetch moons: 120 examples\n"
    assert socket_of(project).exists()
    served = warm(project, "pipeline.stages.split", "moons")  # served by the worker
    assert served.returncode == 0 and served.stdout == "split moons: train 60, dev 30, test 30\n"
    assert (project / "data/split/moons/train.npz").exists()  # in the client's working directory
    direct = run([sys.executable, "-m", "pipeline.stages.split", "moons"], project)
    assert direct.stdout == served.stdout


def test_errors_exit_status_and_environment_are_the_clients(project):
    warm(project, "pipeline.stages.fetch", "moons")
    failed = warm(project, "pipeline.stages.fetch", "nope")
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == ["error: unknown dataset 'nope': params.yaml has ['moons']"]
    run([sys.executable, "-m", "pipeline.stages.split", "moons"], project)
    unreachable = warm(project, "pipeline.stages.train", "moons", "l2",
                       env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert unreachable.returncode == 1
    assert "cannot reach the MLflow tracking store at http://127.0.0.1:9" in unreachable.stderr


def test_changed_code_gets_its_own_worker(project):
    before = socket_of(project)
    with open(project / "pipeline/stages/report.py", "a") as source:
        source.write("\n# an edit\n")
    assert socket_of(project) != before


def test_warm_can_be_turned_off(project):
    result = warm(project, "pipeline.stages.fetch", "moons", env={"REGULARIZATION_LAB_WARM": "0"})
    assert result.returncode == 0 and result.stdout == "fetch moons: 120 examples\n"
    assert not socket_of(project).exists()
