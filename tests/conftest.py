"""Shared fixtures: a real, small copy of the project in a temporary git + DVC
repository, and a helper to run the project's commands in it."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

# Two pytest workers share 2 cores, each starting commands whose torch runs two OpenMP threads. An
# idle OpenMP thread spins for 300 000 rounds before it sleeps, by default, taking the cores from the
# other worker's commands: two small `dvc repro` side by side took 147 s, and 54 s with 10 000 rounds
# (44 s and 42 s alone). Only waiting changes, not the arithmetic, so every result is the same.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from pipeline import params  # noqa: E402 (after the environment its imports read)
from pipeline.stages import fetch, split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # dvc and python of the environment under test


def run(args: list[str], cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    environment.pop("MLFLOW_TRACKING_URI", None)  # tests use the project's own SQLite store
    environment.update(env or {})
    result = subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def obeying_file_permissions(command: list[str]) -> list[str]:
    """command, run so that a read-only file stays read-only to it. Tests and
    CI run as root, and root writes read-only files anyway (CAP_DAC_OVERRIDE);
    without that capability root obeys permissions like any user, and keeps
    reading what it owns (the interpreter under /root, tmp_path)."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override", *command]


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def shrink_conf(conf: Path, whole_suite: bool = False) -> None:
    """Make the copied conf/ fast: moons only (120 points: 60 train, 30 dev, 30
    test), two recipes (baseline, l2; or the whole suite), two seeds, one path
    of three values, few steps; one landscape (the bowl at two strengths)."""
    edit_yaml(conf / "datasets/default.yaml",
              lambda d: d.update(defaults=[x for x in d["defaults"] if "circles" not in str(x)]))
    edit_yaml(conf / "trainer/default.yaml", lambda d: d.update(max_steps=60, eval_every=20))
    edit_yaml(conf / "dataset/moons.yaml", lambda d: (d["source"].update(n_samples=120),
                                                        d["split"].update(dev=30, test=30)))
    if not whole_suite:
        edit_yaml(conf / "suite/default.yaml",
                  lambda d: d.update(defaults=[x for x in d["defaults"] if x == "_self_" or "@l2" in next(iter(x))]))
    edit_yaml(conf / "config.yaml", lambda d: d.update(seeds=[0, 1]))

    def one_path(d):
        d["defaults"] = [x for x in d["defaults"] if x == "_self_" or "@l2." in next(iter(x))]
        for name in list(d):
            if name not in ("defaults", "l2"):
                del d[name]
        d["l2"]["values"] = [0.1, 1, 10]

    edit_yaml(conf / "path/default.yaml", one_path)
    edit_yaml(conf / "landscapes/default.yaml",
              lambda d: d.update(steps=30, surfaces={"bowl": {**d["surfaces"]["bowl"], "strengths": [0, 1]}}))


def make_project(path: Path, whole_suite: bool = False, own_code: bool = False) -> Path:
    """A git + DVC repository holding a copy of the project with a small conf/.
    Its pipeline/ is a link to the code under test unless own_code: the warm
    worker (pipeline/warm.py) serves one copy of the code, so projects that
    share it share one worker, which takes seconds of a core to start."""
    path.mkdir(parents=True, exist_ok=True)
    for item in ("pipeline", "conf", "data/files", "dvc.yaml", ".gitignore", ".dvcignore"):
        source = ROOT / item
        if item == "pipeline" and not own_code:
            (path / item).symlink_to(source, target_is_directory=True)
        elif source.is_dir():
            shutil.copytree(source, path / item, ignore=shutil.ignore_patterns("__pycache__", "*.tmp*"))
        else:
            shutil.copy(source, path / item)
    shrink_conf(path / "conf", whole_suite)
    run(["git", "init", "-q"], path)
    run(["git", "config", "user.email", "test@example.com"], path)
    run(["git", "config", "user.name", "test"], path)
    run(["dvc", "init", "-q"], path)
    shutil.copy(ROOT / ".dvc/config", path / ".dvc/config")
    shutil.copytree(ROOT / ".dvc/plots", path / ".dvc/plots")  # the project's vega templates
    in_project(path, lambda: params.main([]))  # params.yaml from the shrunk conf/
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", "project"], path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture(scope="module")
def built_project(tmp_path_factory) -> Path:
    """A small project after one cold `dvc repro`, shared by a module's tests."""
    path = make_project(tmp_path_factory.mktemp("built") / "project")
    result = run(["dvc", "repro"], path)
    (path / "repro.log").write_text(result.stdout + result.stderr)
    return path


def in_project(project: Path, work):
    """Run work() with the project as working directory, in this process: a
    fresh interpreter would spend seconds importing what this one has loaded."""
    cwd = os.getcwd()
    os.chdir(project)
    try:
        return work()
    finally:
        os.chdir(cwd)


def prepare_data(project: Path, dataset: str = "moons") -> None:
    """The fetch and split stages of one dataset."""
    in_project(project, lambda: (fetch.main([dataset]), split.main([dataset])))


def mlflow_client(project: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


LOOPBACK = "127.0.0.1"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output clean
        pass


@contextlib.contextmanager
def serve_directory(root: Path):
    """A real HTTP server on the loopback interface serving root; yields its base URL."""
    httpd = ThreadingHTTPServer((LOOPBACK, 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def gone(*pids: int, within: float) -> bool:
    """Whether every one of these processes has ended within that many seconds."""
    deadline = time.monotonic() + within
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def stop_process_group(process: subprocess.Popen) -> None:
    """End a process started with start_new_session=True and all its children
    (mlflow server runs uvicorn as a child): SIGTERM, then SIGKILL."""
    for signal_to_send, patience in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, signal_to_send)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=patience)
            break
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str, log: Path, cwd: Path, *options: str,
                  start_timeout: float = 60.0) -> Iterator[tuple[str, Callable[[], None], subprocess.Popen]]:
    """A real `mlflow server` on 127.0.0.1 at a free port, started at once;
    yields its URL, its process (the leader of its group) and ready(), which waits until /health answers (failing
    with the server's log if it exits or takes longer than start_timeout), so
    that a caller can do other work while it starts. Its job runner (a dozen
    background workers) is switched off; it is stopped, children included, at the end."""
    url = f"http://{LOOPBACK}:{free_port()}"
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
                   "DO_NOT_TRACK": "true"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_store_uri,
               "--host", LOOPBACK, "--port", url.rsplit(":", 1)[1], "--workers", "1", *options]
    with open(log, "w") as output:
        server = subprocess.Popen(command, cwd=cwd, env=environment, stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)

    def ready() -> None:
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise AssertionError(f"mlflow server exited {server.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise AssertionError(f"mlflow server not healthy after {start_timeout:.0f} s:\n{log.read_text()}")

    try:
        yield url, ready, server
    finally:
        stop_process_group(server)


QUEUE_TIMEOUT = 600.0
DONE = ("Success", "Failed")


def queue_status(project: Path) -> tuple[dict[str, str], bool]:
    """Each queued experiment's name -> its status, and whether any worker is
    left, from `dvc queue status`."""
    lines = run(["dvc", "queue", "status"], project).stdout.splitlines()
    # A row: task id, name, time created (two words), status; the table ends at a blank line.
    rows = [line.split() for line in lines[1:lines.index("")]] if "" in lines else []
    return {row[1]: row[-1] for row in rows}, "Worker status: 0 active, 0 idle" not in lines


def wait_for_queue(project: Path) -> dict[str, str]:
    """`dvc queue start` returns at once and its workers exit when the queue
    is empty: wait until every task has ended and no worker is left."""
    deadline = time.monotonic() + QUEUE_TIMEOUT
    while time.monotonic() < deadline:
        tasks, workers_left = queue_status(project)
        if tasks and all(status in DONE for status in tasks.values()) and not workers_left:
            return tasks
        time.sleep(2)
    raise AssertionError(f"the queue did not finish in {QUEUE_TIMEOUT:.0f} s: {queue_status(project)}")


@pytest.fixture(autouse=True)
def ctrl_c_as_a_terminal_gives_it():
    """Every test starts with Python's own Ctrl-C handler, and so do the
    commands it starts. A child inherits an ignored SIGINT: a test sending
    Ctrl-C to its command once saw it ignored (exit 0 instead of 130) in a
    whole-suite run, though it passes alone. Which test left it ignored is
    not known; not fit(), interrupted or not (tests/engine/test_fit.py)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def no_tracking_uri_left_behind():
    """mlflow.set_tracking_uri(), which logging a model calls, also writes
    MLFLOW_TRACKING_URI into this process's environment, where every later
    test of the worker finds it: a search once logged into another test's
    store. Each test ends with neither set."""
    yield
    if (mlflow := sys.modules.get("mlflow")) is not None:
        mlflow.set_tracking_uri(None)  # no-op unless a test set one; else also unsets the variable


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread_in_the_test_process():
    """Trainings inside the test process run on one thread. Two pytest workers
    share 2 cores, and two processes each spinning two OpenMP threads trained
    several times slower (a measured 6x); the commands that tests start keep
    torch's default. Tests of what torch's own threads do ask for them (torch_threads)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def torch_threads():
    """torch with as many threads as the machine has cores, as users run it:
    tensors past 32 768 elements are then split between threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    yield torch.get_num_threads()
    torch.set_num_threads(before)


# The modules (and classes) that take longest, longest first, as a whole-suite run measured them on 2 cores
# (2026-12-04: 259, 128, 113, 98, 94, 91, 91, 87, 51 s).
LONGEST_FIRST = ("tests/test_train.py", "tests/stages/test_pipeline.py", "tests/ui/",
                 "tests/tracking/test_team_server.py", "tests/engine/test_independence.py::TestFloat64",
                 "tests/engine/test_independence.py::TestFloat32", "tests/test_warm.py",
                 "tests/stages/test_failures.py", "tests/engine/test_kernels.py")


def pytest_collection_modifyitems(items) -> None:
    """The longest modules first: pytest-xdist hands whole modules to its
    workers in collection order (with --no-loadscope-reorder; by default it
    orders them by their number of tests), and a long one handed out last
    would leave one worker running it alone at the end."""
    def rank(item) -> int:
        return next((i for i, prefix in enumerate(LONGEST_FIRST) if item.nodeid.startswith(prefix)),
                    len(LONGEST_FIRST))

    items.sort(key=rank)
