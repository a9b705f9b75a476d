"""One error type for every failure a user can cause or fix, and the CLI wrapper
that turns it into one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from typing import Callable


class PipelineError(Exception):
    """A failure with a cause the user can act on: bad config, bad data,
    divergence, unreachable tracking server. Its message is the whole report."""


class Terminated(BaseException):
    """SIGTERM, raised where the program is, like Ctrl-C's KeyboardInterrupt,
    so that the same clean-up runs: temporary files go, MLflow runs are marked
    FAILED. Python's default would end the process on the spot."""


def _terminate(signum, frame):
    raise Terminated


def cli(main: Callable[..., None]) -> Callable[..., None]:
    """Run a stage's main(): a PipelineError becomes 'error: <message>' and
    exit 1; Ctrl-C and SIGTERM one line each and the shell's exit codes 130 and 143."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        in_main_thread = threading.current_thread() is threading.main_thread()  # where handlers can be set
        previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
        try:
            return main(*args, **kwargs)
        except PipelineError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print("error: interrupted (Ctrl-C)", file=sys.stderr)
            raise SystemExit(130) from None
        except Terminated:
            print("error: terminated (SIGTERM)", file=sys.stderr)
            raise SystemExit(143) from None
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    return wrapper
