"""Run a stage in a process forked from a warm parent.

Every DVC stage is a new Python process, and importing PyTorch, Lightning and
MLflow costs about 10 s on a 2-core machine: more than training a network on
these data. `python -m pipeline.warm MODULE ARGS...` behaves like
`python -m MODULE ARGS...` (same working directory, environment, standard
streams and exit code), but the work happens in a child forked from a
background worker that has imported those libraries once. The worker starts
on first use, serves only the exact code and environment it loaded (the
socket name carries a hash of the package's source, the installed
distributions and the variables native libraries read when they load), and
exits after IDLE_SECONDS without work. Each stage still runs in a fresh
process (a fork), so no state passes from one stage to the next.

The client is the stage as far as anyone can tell: its signals (Ctrl-C,
SIGTERM) go to the child, its exit status is the child's, and when it
dies, even by SIGKILL, the child stops too (and its MLflow runs are FAILED);
it gets SIGTERM itself when its own parent (dvc repro) dies.
The socket lives in a directory only this user can enter, and each side
checks the other's uid.

REGULARIZATION_LAB_WARM=0 runs the module in this process instead.

This module is imported by every stage command: it must stay free of heavy imports.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import importlib
import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
from pathlib import Path

from pipeline.core.processes import die_with_parent

PACKAGE = Path(__file__).resolve().parent
IDLE_SECONDS = 120
START_TIMEOUT_SECONDS = 120
# A child whose client died gets SIGTERM (clean-up: temporary files, FAILED
# runs); if that clean-up hangs, SIGALRM's default action ends it.
CLEAN_UP_SECONDS = 30
# SIGHUP is not: it ends the client, and so, cleanly, the child.
FORWARDED = (signal.SIGINT, signal.SIGTERM)
# Read by native libraries (OpenMP, BLAS, the allocator, the interpreter,
# locale, matplotlib) when they load, which in a forked child has already
# happened: a worker serves only clients whose values match its own.
LOAD_TIME_ENV = ("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "BLIS_", "VECLIB_", "NUMEXPR_", "TORCH_",
                 "PYTORCH_", "CUDA_", "LD_", "MALLOC_", "JE_", "PYTHON", "LC_", "LANG", "MPL", "TMPDIR", "HOME")
# What the stages import; the worker imports it all before it serves.
PRELOAD = ["pipeline.stages.fetch", "pipeline.stages.split", "pipeline.stages.train", "pipeline.stages.evaluate",
           "pipeline.stages.path", "pipeline.stages.report", "mlflow.pytorch", "mlflow.pyfunc",
           "mlflow.store.tracking.sqlalchemy_store", "sklearn.datasets", "sklearn.model_selection",
           "sklearn.preprocessing", "sklearn.metrics", "scipy.io", "scipy.stats", "mlflow.data", "PIL.WebPImagePlugin",
           "markdown"]


def socket_path() -> str:
    """Where the worker for this code, these packages and this environment
    listens, in socket_directory()."""
    digest = hashlib.sha256(f"{sys.executable}\0{PACKAGE}".encode())
    for source in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(source.relative_to(PACKAGE)).encode() + b"\0" + source.read_bytes())
    # Every installed distribution's name-version.dist-info: an upgrade (of
    # torch, say) is never served by a worker that loaded the old one.
    for directory in sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}):
        with contextlib.suppress(OSError):
            digest.update("\0".join(sorted(os.listdir(directory))).encode())
    for name, value in sorted(os.environ.items()):
        if name.startswith(LOAD_TIME_ENV):
            digest.update(f"{name}={value}\0".encode())
    return str(socket_directory() / f"{digest.hexdigest()[:20]}.sock")


def socket_directory() -> Path:
    """Per user: under $XDG_RUNTIME_DIR where set, else the temporary directory."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"regularization-lab-{os.getuid()}"


def private(directory: Path) -> bool:
    """The directory exists, or is made, as this user's alone (0700): nobody
    else can put a socket there for a stage to hand its environment to."""
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        status = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid() and not status.st_mode & 0o077


def peer_uid(connection: socket.socket) -> int:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]  # pid, uid, gid


def run_here(module: str, args: list[str]) -> int:
    sys.argv = [module, *args]
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as missing:
        if missing.name is None or not module.startswith(missing.name):
            raise  # a module the stage imports is missing: its traceback says which, and where
        print(f"error: no stage module {module!r}: see the commands in dvc.yaml", file=sys.stderr)
        return 1
    try:
        loaded.main()
    except SystemExit as done:
        return exit_status(done)
    return 0


def exit_status(done: SystemExit) -> int:
    if done.code is None or isinstance(done.code, int):
        return done.code or 0
    print(done.code, file=sys.stderr)
    return 1


# --- client: the stage command -------------------------------------------------------


def connect(path: str) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        client.connect(path)
        if peer_uid(client) == os.getuid():
            return client
    except OSError:
        pass
    client.close()
    return None


def start_worker(path: str) -> socket.socket | None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "pipeline.warm", "--serve", path],
        cwd=PACKAGE.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives this stage, not tied to its terminal
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if client := connect(path):
            return client
        if worker.poll() is not None:  # it could not serve (another's socket would have answered just now)
            print(f"warning: the warm worker could not start at {path}: running without it", file=sys.stderr)
            return None
        time.sleep(0.05)
    return None


def request(client: socket.socket, module: str, args: list[str]) -> int | None:
    """The child's exit status, or None if the worker did not take the job
    (it was just then shutting down)."""
    message = json.dumps({"module": module, "args": args, "cwd": os.getcwd(), "env": dict(os.environ)})
    try:
        socket.send_fds(client, [message.encode()], [0, 1, 2])
        accepted = client.recv(64)
    except OSError:
        return None
    kind, _, value = accepted.decode(errors="replace").partition(" ")
    if kind == "status":  # the job ended before it started (its reason on our stderr)
        return int(value)
    if kind != "pid":  # nothing, or not this protocol: never a number taken for a pid
        return None
    child = int(value)
    forward = lambda signum, frame: os.kill(child, signum)  # noqa: E731
    for signum in FORWARDED:
        signal.signal(signum, forward)
    kind, _, value = client.recv(64).decode(errors="replace").partition(" ")
    if kind != "status":
        print(f"error: the warm worker's child {child} died; rerun with REGULARIZATION_LAB_WARM=0 to see why",
              file=sys.stderr)
        return 1
    return int(value)


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        return serve(sys.argv[2])
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m pipeline.warm MODULE [ARGS...]")
    module, args = sys.argv[1], sys.argv[2:]
    if not module.startswith("pipeline."):
        raise SystemExit(f"error: pipeline.warm runs the project's stage modules, not {module!r}")
    die_with_parent()
    if os.environ.get("REGULARIZATION_LAB_WARM", "1") == "0":
        raise SystemExit(run_here(module, args))
    path = socket_path()
    if not private(Path(path).parent):
        print(f"warning: {Path(path).parent} is not this user's alone (mode 0700): running without the warm worker",
              file=sys.stderr)
        raise SystemExit(run_here(module, args))
    try:
        client = connect(path) or start_worker(path)
    except KeyboardInterrupt:  # Ctrl-C while the worker starts: no stage has begun, nothing to clean up
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        raise SystemExit(130) from None
    status = None
    if client is not None:
        with client:
            status = request(client, module, args)
    if status is None:  # no worker could take the job: do it here, just slower
        status = run_here(module, args)
    raise SystemExit(status)


# --- worker ----------------------------------------------------------------------------


def serve(path: str) -> None:
    # pyarrow (MLflow imports it) loads jemalloc, which would start a
    # background thread; its allocator is not even the one pyarrow uses.
    os.environ.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
    for name in PRELOAD:
        importlib.import_module(name)
    importlib.import_module("pipeline.analysis.figures").warm_up()
    importlib.import_module("pipeline.tracking.store").warm_up()
    # Move everything imported so far out of the garbage collector's reach: a
    # collection in a forked stage would otherwise touch every object and so
    # copy most of the worker's memory page by page (about a second per stage).
    gc.freeze()
    # fork() copies only the calling thread: a thread pool started here would
    # be missing, perhaps with its locks held, in every stage. OpenBLAS (numpy's
    # and scipy's) starts one as it loads and joins it in a pthread_atfork
    # handler; one throwaway fork does that now, and the check proves it.
    if os.fork() == 0:
        os._exit(0)
    os.wait()
    if (threads := len(os.listdir("/proc/self/task"))) > 1:
        raise SystemExit(f"the warm worker has {threads} threads after warming up; it must have one to fork")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    staging = f"{path}.{os.getpid()}"
    listener.bind(staging)
    os.chmod(staging, 0o600)  # only this user may hand the worker jobs
    listener.listen(16)
    os.replace(staging, path)  # atomic: a racing worker's socket is replaced, never half-made
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    listener.settimeout(IDLE_SECONDS)
    try:
        while True:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                break
            if peer_uid(connection) != os.getuid():
                connection.close()
                continue
            if os.fork() == 0:
                listener.close()
                run_child(connection)
            connection.close()
    finally:
        if Path(path).exists() and os.stat(path).st_ino == os.fstat(listener.fileno()).st_ino:
            os.unlink(path)
        listener.close()


def run_child(connection: socket.socket) -> None:
    """In the forked child: become the client's stage process, run, report, exit."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # subprocesses (git) must be waitable
    status = 1
    try:
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
        for fd, target in zip(fds, (0, 1, 2)):  # first: whatever goes wrong is said on the client's stderr
            os.dup2(fd, target)
            os.close(fd)
        job = json.loads(message)
        if not job["module"].startswith("pipeline."):
            print(f"error: the warm worker runs the project's stage modules, not {job['module']!r}", file=sys.stderr)
            return
        connection.send(f"pid {os.getpid()}".encode())
        stop_with_client(connection)
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        from pipeline.tracking.store import quiet_mlflow

        quiet_mlflow()
        status = run_here(job["module"], job["args"])
    except BaseException:
        traceback.print_exc()
    finally:
        signal.signal(signal.SIGIO, signal.SIG_IGN)  # the client closing after our report is no news
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            connection.send(f"status {status}".encode())  # tagged: a bare 1 could be read as a pid
        finally:
            os._exit(status)


def stop_with_client(connection: socket.socket) -> None:
    """When the client goes (killed, even by SIGKILL, or its terminal closed),
    the kernel signals SIGIO on its connection: end this stage as SIGTERM
    would, with clean-up, writing nowhere (nobody reads the client's streams now)."""

    def on_io(signum, frame):
        try:
            if connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                return  # data, not a hang-up (the client sends none, but be exact)
        except BlockingIOError:
            return  # the client is still there
        except OSError:
            pass  # reset: gone
        signal.signal(signal.SIGIO, signal.SIG_IGN)
        nowhere = os.open(os.devnull, os.O_WRONLY)
        os.dup2(nowhere, 1)
        os.dup2(nowhere, 2)
        signal.alarm(CLEAN_UP_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGIO, on_io)
    fcntl.fcntl(connection, fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(connection, fcntl.F_SETFL, fcntl.fcntl(connection, fcntl.F_GETFL) | os.O_ASYNC)
    on_io(signal.SIGIO, None)  # it may have gone before we listened


if __name__ == "__main__":
    main()
