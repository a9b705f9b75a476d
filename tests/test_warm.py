"""The warm launcher behaves like `python -m MODULE`: output, exit status,
working directory, environment and signals are the client's, and the stage
dies with it; code, packages and load-time variables that differ get a new
worker; the worker forks with one thread and serves only its user;
REGULARIZATION_LAB_WARM=0 runs in-process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BIN, gone, make_project, mlflow_client, run

from pipeline import warm as launcher
from pipeline.tracking.store import opening_alone


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with a copy of the code: a worker of its own, which these tests
    start, change, signal and kill."""
    return make_project(tmp_path / "project", own_code=True)


def warm(project: Path, *args: str, env: dict | None = None):
    return run([sys.executable, "-m", "pipeline.warm", *args], project, env=env, check=False)


def socket_of(project: Path, env: dict | None = None, python: str = sys.executable) -> Path:
    """The worker's socket for clients run by that interpreter (its path is part of the key: a stage command's
    `python` from PATH may be another name than the tests' own)."""
    code = "from pipeline.warm import socket_path; print(socket_path())"
    return Path(run([python, "-c", code], project, env=env).stdout.strip())


def processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            found[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), (entry / "cmdline").read_bytes())
        except (ValueError, OSError):
            continue
    return found


def worker_of(project: Path, python: str = sys.executable) -> int:
    """The worker serving the project's code (its forked stages share its command line)."""
    socket = str(socket_of(project, python=python)).encode()
    table = processes()
    serving = {pid for pid, (_, cmdline) in table.items() if cmdline.rstrip(b"\0").split(b"\0")[-2:] == [b"--serve", socket]}
    [pid] = [pid for pid in serving if table[pid][0] not in serving]
    return pid


def children(pid: int) -> list[int]:
    return [child for child, (parent, _) in processes().items() if parent == pid]


def stages_of(project: Path, python: str = sys.executable) -> list[int]:
    """The worker's children running this project's stages: the worker is
    shared with every test (in any xdist process) whose stages use the same
    interpreter, and a child takes its client's working directory."""
    found = []
    for child in children(worker_of(project, python)):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/cwd").resolve() == project.resolve():
                found.append(child)
    return found


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


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
    # fork() copies one thread: the worker must have no other (BLAS pools, allocator threads)
    assert threads(worker_of(project)) == 1
    assert (os.stat(socket_of(project).parent).st_mode & 0o777) == 0o700  # this user's alone
    if os.geteuid() == 0:
        assert_other_users_are_refused(socket_of(project))


def assert_other_users_are_refused(path: Path) -> None:
    """Even where another user can reach the socket, the worker checks their uid and hangs up."""
    stranger = ("import socket, sys\ns = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)\ns.connect(sys.argv[1])\n"
                "try:\n    socket.send_fds(s, [b'{}'], [0, 1, 2])\n    print('answered' if s.recv(64) else 'hung up')\n"
                "except OSError:\n    print('hung up')")
    os.chmod(path.parent, 0o711)
    os.chmod(path, 0o666)
    try:  # Debian's interpreter: the test's own may live where nobody may read
        result = subprocess.run(["/usr/bin/python3", "-I", "-c", stranger, str(path)], user=65534, group=65534,
                                capture_output=True, text=True, timeout=30, cwd="/")
    finally:
        os.chmod(path.parent, 0o700)
        os.chmod(path, 0o600)
    assert (result.returncode, result.stdout) == (0, "hung up\n"), result.stderr


def test_errors_exit_status_and_environment_are_the_clients(project):
    warm(project, "pipeline.stages.fetch", "moons")
    failed = warm(project, "pipeline.stages.fetch", "nope")
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == ["error: unknown dataset 'nope': params.yaml has ['moons']"]
    unreachable = warm(project, "pipeline.train", "dataset=moons", env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
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


def test_a_directory_others_can_enter_is_refused(tmp_path):
    assert launcher.private(tmp_path / "new") and (os.stat(tmp_path / "new").st_mode & 0o777) == 0o700
    (tmp_path / "shared").mkdir(mode=0o755)
    os.chmod(tmp_path / "shared", 0o755)
    assert not launcher.private(tmp_path / "shared")
    (tmp_path / "link").symlink_to(tmp_path / "new")
    assert not launcher.private(tmp_path / "link")


def test_load_time_variables_and_installed_packages_key_the_worker(project, tmp_path, monkeypatch):
    plain = socket_of(project)
    assert socket_of(project, env={"OMP_NUM_THREADS": "1"}) != plain  # OpenMP reads it once, as it loads
    assert socket_of(project, env={"PYTHONHASHSEED": "7"}) != plain
    assert socket_of(project, env={"MLFLOW_EXPERIMENT_NAME": "x"}) == plain  # read when used: any worker will do
    # an upgrade renames the distribution's NAME-VERSION.dist-info
    site = tmp_path / "site-packages"
    (site / "torch-2.13.0.dist-info").mkdir(parents=True)
    monkeypatch.setattr(launcher.sysconfig, "get_path", lambda name: str(site))
    before = launcher.socket_path()
    (site / "torch-2.13.0.dist-info").rename(site / "torch-2.14.0.dist-info")
    assert launcher.socket_path() != before


def client_and_child(project: Path, *stage: str) -> tuple[subprocess.Popen, int]:
    """A warm stage command, once the worker's child runs it and its MLflow runs exist."""
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    client = subprocess.Popen([sys.executable, "-m", "pipeline.warm", *stage], cwd=project, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            # under the stages' own lock: a store this read created would race the stage creating its tables
            with opening_alone(f"sqlite:///{project / 'mlflow.db'}"):
                experiment = mlflow_client(project).get_experiment_by_name("moons-adhoc")
            running = "tags.kind = 'seed' and attributes.status = 'RUNNING'"
            runs = mlflow_client(project).search_runs([experiment.experiment_id], running) if experiment else []
            if len(runs) == 2:
                [child] = stages_of(project)
                return client, child
            time.sleep(0.2)
        raise AssertionError("the stage never started")
    except BaseException:
        client.kill()  # and so, with the worker as it should be, the stage
        raise


def seed_runs(project: Path) -> list[str]:
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("moons-adhoc").experiment_id
    return sorted(r.info.status for r in client.search_runs([experiment], "tags.kind = 'seed'"))


# an ad-hoc run (it opens its MLflow runs before training): two seeds, training until stopped
ENDLESS = ("pipeline.train", "dataset=moons", "seeds=[0,1]", "trainer.max_steps=100000000", "trainer.eval_every=100")


def test_the_stage_is_the_clients_signals_and_dies_with_it(project):
    client, child = client_and_child(project, *ENDLESS)
    client.send_signal(signal.SIGINT)  # Ctrl-C reaches the child, and its status comes back
    _, stderr = client.communicate(timeout=60)
    assert (client.returncode, stderr) == (130, "error: interrupted (Ctrl-C)\n")
    assert gone(child, within=10) and seed_runs(project) == ["FAILED", "FAILED"]

    client, child = client_and_child(project, *ENDLESS)
    client.kill()  # SIGKILL: the client can forward nothing; the child must notice it is gone
    client.wait()
    try:
        assert gone(child, within=30), "the stage outlived its client"
    finally:
        if Path(f"/proc/{child}").exists():
            os.kill(child, signal.SIGKILL)
    assert seed_runs(project) == ["FAILED"] * 4  # cleaned up as on SIGTERM


def test_a_stage_dies_with_the_dvc_repro_that_started_it(project):
    """kill -9 of `dvc repro` while a stage trains: the stage command (this
    launcher) gets SIGTERM from the kernel as its parent dies, and the
    stage ends as on SIGTERM, with one line and nothing written; before, it
    trained on and wrote its outputs after dvc had exited."""
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("max_steps: 60", "max_steps: 100000000"))  # trains until stopped
    # dvc runs a stage's command with $SHELL -c; Debian's /bin/sh (dash, what dvc
    # takes when SHELL is unset, as in CI) stays the stage's parent, where bash execs
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "SHELL": "/bin/sh"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    python = str(BIN / "python")  # what dvc.yaml's `python -m pipeline.warm` finds on PATH
    dvc = subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=project, env=environment, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    command = None
    try:
        for line in dvc.stdout:  # up to the first train stage's command
            if line.startswith("> exec python -m pipeline.warm pipeline.stages.train"):
                break
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not stages_of(project, python):
            time.sleep(0.2)
        [stage] = stages_of(project, python)
        [command] = [pid for pid in children(dvc.pid) if b"pipeline.warm" in processes()[pid][1]]
        time.sleep(2)  # training
        dvc.kill()
        dvc.wait()
        survived = not (gone(command, within=30) and gone(stage, within=30))
    finally:
        for pid in [*stages_of(project, python), *([command] if command else [])]:  # what outlived dvc
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    said = dvc.stdout.read()  # the stage's own stderr shared dvc's pipe: read once every writer is gone
    assert not survived, "the stage outlived dvc repro"
    assert "error: terminated (SIGTERM)" in said.splitlines(), said
    assert not list((project / "models").rglob("model.pt"))  # nothing written, then or later


def test_a_job_the_worker_refuses_gets_one_line_and_a_tagged_status_never_a_bare_number(project):
    """The worker's replies say what they are ("pid N", "status N"): a job it
    refused once answered a bare "1", which a client took for the stage's
    pid (and would have forwarded Ctrl-C to init); the reason now reaches the
    client's stderr rather than the worker's /dev/null."""
    assert warm(project, "pipeline.stages.fetch", "moons").returncode == 0  # starts the worker
    client = launcher.connect(str(socket_of(project)))
    assert client is not None
    read, write = os.pipe()
    job = {"module": "os", "args": [], "cwd": str(project), "env": dict(os.environ)}
    with client:
        socket.send_fds(client, [json.dumps(job).encode()], [0, write, write])
        os.close(write)
        reply = client.recv(64)
    said = os.read(read, 4096)
    os.close(read)
    assert reply == b"status 1"
    assert said == b"error: the warm worker runs the project's stage modules, not 'os'\n"


def test_an_occupied_socket_path_is_said_at_once_and_the_stage_still_runs(project):
    """Something that is not the worker's socket where it would be (here a
    directory): the worker cannot bind there and exits; the stage says so in
    one line and runs in its own process, rather than waiting 120 s in silence."""
    path = socket_of(project)
    path.mkdir(parents=True)
    try:
        started = time.monotonic()
        result = warm(project, "pipeline.stages.fetch", "moons")
        took = time.monotonic() - started
    finally:
        path.rmdir()
    assert result.returncode == 0 and result.stdout == "fetch moons: 120 examples\n"
    assert result.stderr == f"warning: the warm worker could not start at {path}: running without it\n"
    assert took < 60, took  # the worker's import time, not the 120 s start timeout


def test_an_unknown_stage_module_is_one_line_warm_or_not(project):
    for env in ({}, {"REGULARIZATION_LAB_WARM": "0"}):
        result = warm(project, "pipeline.stages.nonexistent", env=env)
        assert (result.returncode, result.stderr) == (
            1, "error: no stage module 'pipeline.stages.nonexistent': see the commands in dvc.yaml\n"), env


def test_ctrl_c_while_the_worker_starts_is_one_line(project):
    """A worker of its own (a load-time variable no other worker has), so the
    client is still waiting for it to import everything when Ctrl-C comes."""
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "MPLCONFIGDIR_TEST_KEY": "ctrl-c"}
    client = subprocess.Popen([sys.executable, "-m", "pipeline.warm", "pipeline.stages.fetch", "moons"], cwd=project,
                              env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)  # the worker takes about 10 s to import
    client.send_signal(signal.SIGINT)
    _, stderr = client.communicate(timeout=60)
    assert (client.returncode, stderr) == (130, "error: interrupted (Ctrl-C)\n")
    assert not (project / "data/raw/moons.npz").exists()
