"""One error type for every failure a user can cause or fix, and the CLI wrapper
that turns it into one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import errno
import functools
import http.client
import os
import signal
import sys
import threading
from typing import Callable, Iterator


class PipelineError(Exception):
    """A failure with a cause the user can act on: bad config, bad data,
    divergence, unreachable tracking server. Its message is the whole report."""


SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """SIGTERM, raised where the program is, like Ctrl-C's KeyboardInterrupt,
    so that the same clean-up runs: temporary files go, MLflow runs are marked
    FAILED. Python's default would end the process on the spot."""


_pending: type[BaseException] | None = None  # the signal received, as its exception


def _signalled(signum, frame):
    global _pending
    _pending = KeyboardInterrupt if signum == signal.SIGINT else Terminated
    raise _pending


def _unraisable(previous: Callable):
    """sys.unraisablehook that keeps quiet about a signal's swallowed exception
    (raise_pending raises it again; its line is the cli's), and reports the rest."""
    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, (KeyboardInterrupt, Terminated)):
            previous(unraisable)
    return hook


def raise_pending() -> None:
    """Raise a received signal's exception again, from a place where it cannot
    be lost: Python swallows an exception raised inside a finalizer or a
    weakref callback ("Exception ignored in ..."), and the garbage collector
    runs those at any allocation, so the handler's own raise may vanish and
    the program carry on. Long loops (the training steps) call this."""
    if _pending is not None:
        raise _pending


# Faults of the machine, not of the program: said in one line with what to do, wherever they surface (an
# OSError, or a library's exception wrapping one); any other exception is a bug and keeps its traceback.
MACHINE_FAULTS = {errno.ENOSPC: ("no space left on the device", "free some space and rerun"),
                  errno.EDQUOT: ("over the disk quota", "free some space and rerun"),
                  errno.EROFS: ("the file system is read-only", "make it writable and rerun"),
                  errno.EACCES: ("permission denied", "make it writable (or readable) and rerun"),
                  errno.EPERM: ("operation not permitted", "make it writable and rerun")}
SQLITE_FULL = "database or disk is full"  # SQLite's own words (sqlite3.OperationalError, wrapped by SQLAlchemy)
SQLITE_CORRUPT = "database disk image is malformed"  # a store damaged after it was checked (tracking.store)


def causes(error: BaseException) -> Iterator[BaseException]:
    """error, what it was raised from or during, and what it holds (urllib3 keeps the socket's error in its
    args): a library's exception wraps the fault that counts."""
    seen: set[int] = set()
    waiting = [error]
    while waiting:
        error = waiting.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        waiting += [*(a for a in error.args if isinstance(a, BaseException)), error.__context__, error.__cause__]


def machine_fault(error: BaseException) -> str | None:
    """The disk or permission fault behind error (it, or what it was raised
    from), as one line; None when there is none."""
    for error in causes(error):
        if isinstance(error, OSError) and error.errno in MACHINE_FAULTS:
            what, remedy = MACHINE_FAULTS[error.errno]
            return f"{what}" + (f": {error.filename}" if error.filename else "") + f" ({remedy})"
        if SQLITE_FULL in str(error):
            return f"no space left on the device for the MLflow store ({MACHINE_FAULTS[errno.ENOSPC][1]})"
        if SQLITE_CORRUPT in str(error):
            return "the MLflow store is damaged (database disk image is malformed): move it aside to start a new store"
    return None


# A stage's one network peer is the tracking server (a download names its own failures, mirror by mirror):
# a connection it refuses, resets, cuts mid-reply or lets time out mid-run is that server gone.
LOST_CONNECTION = {ConnectionRefusedError: "connection refused", ConnectionResetError: "connection reset",
                   ConnectionAbortedError: "connection aborted", BrokenPipeError: "connection closed",
                   http.client.IncompleteRead: "reply cut off", TimeoutError: "timed out"}


def lost_server(error: BaseException) -> str | None:
    """The tracking server's going away behind error (an MLflow or HTTP
    exception wrapping the socket's), as one line; None when it is not that."""
    server = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not server.startswith(("http://", "https://")):
        return None
    for error in causes(error):
        for kind, what in LOST_CONNECTION.items():
            if isinstance(error, kind):
                return (f"the MLflow tracking server {server} stopped answering ({what}): start it again and rerun "
                        f"(the runs it could not end show KILLED after the next run)")
    return None


def cli(main: Callable[..., None]) -> Callable[..., None]:
    """Run a stage's main(): a PipelineError becomes 'error: <message>' and
    exit 1, as do a full disk, a denied write and a tracking server gone; Ctrl-C and SIGTERM one
    line each and the shell's exit codes 130 and 143."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        global _pending
        in_main_thread = threading.current_thread() is threading.main_thread()  # where handlers can be set
        previous = {signum: signal.signal(signum, _signalled) for signum in SIGNALS} if in_main_thread else {}
        previous_hook, sys.unraisablehook = sys.unraisablehook, _unraisable(sys.unraisablehook)
        try:
            result = main(*args, **kwargs)
            raise_pending()  # a signal whose exception was swallowed still ends the program as that signal
            return result
        except PipelineError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print("error: interrupted (Ctrl-C)", file=sys.stderr)
            raise SystemExit(130) from None
        except Terminated:
            print("error: terminated (SIGTERM)", file=sys.stderr)
            raise SystemExit(143) from None
        except Exception as error:
            if (fault := machine_fault(error) or lost_server(error)) is None:
                raise  # a bug: its traceback is the report
            print(f"error: {fault}", file=sys.stderr)
            raise SystemExit(1) from None
        finally:
            _pending = None  # handled here: a later call in this process starts afresh
            sys.unraisablehook = previous_hook
            for signum, handler in previous.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    return wrapper
