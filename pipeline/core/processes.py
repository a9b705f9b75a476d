"""Processes that belong to the command the user started."""

from __future__ import annotations

import contextlib
import os
import signal


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """The signal signum when this process's parent (dvc repro, a sweep's
    launcher) dies, even by SIGKILL: a stage or a sweep's job whose parent is
    gone would otherwise train on, and write, after the command the user
    stopped has exited. SIGTERM ends it as Ctrl-C does: one line, FAILED
    runs, no outputs. Linux's prctl(PR_SET_PDEATHSIG); elsewhere nothing."""
    import ctypes

    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signum)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request was in place
        os.kill(os.getpid(), signum)
