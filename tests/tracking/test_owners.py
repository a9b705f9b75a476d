"""Whose runs a stage may end KILLED: only those of a process on this machine
that is gone. (The SIGKILLed stage itself: tests/stages/test_failures.py.)"""

from __future__ import annotations

import os

from pipeline.tracking.owners import OWNER, owner_tag, this_process, why_killed


def _owner(**changes: str) -> str:
    """This process's owner tag with some fields changed."""
    fields = this_process() | changes
    return " ".join(f"{key}={value}" for key, value in fields.items())


def test_only_a_gone_owner_on_this_machine_is_named():
    here, pid, host = this_process(), os.getpid(), this_process()["host"]
    assert owner_tag() == {OWNER: _owner()}
    assert why_killed(_owner(), here) is None  # alive
    assert why_killed(_owner(start="1"), here) == f"owner process {pid} on {host} ended without ending the run"
    assert why_killed(_owner(boot="another-boot"), here) == (
        f"owner process {pid} on {host} ended without ending the run (the machine restarted)")
    assert why_killed(_owner(machine="another-machine", boot="another-boot"), here) is None  # same name, other machine
    assert why_killed(_owner(host="elsewhere"), here) is None
    assert why_killed(_owner(pidns="pid:[1]", start="1"), here) is None  # another container: out of sight
    assert why_killed(_owner(pid="../1"), here) is None
    for unowned in (None, "", "by hand", "pid=1"):  # a parent between stages, runs from before owners
        assert why_killed(unowned, here) is None
