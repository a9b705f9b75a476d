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
    for unowned in (None, "", "by hand", "pid=1"):  # runs from before owners, or tagged by hand
        assert why_killed(unowned, here) is None


# A process that owns a run, as stages do: make it with its owner tag, say
# so, wait for a line on stdin, then end it and exit, or die holding it.
STAGE = """
import sys
from mlflow import MlflowClient
from pipeline.tracking import owners
client = MlflowClient(sys.argv[1])
run_id = client.create_run(sys.argv[2], tags=owners.owner_tag()).info.run_id
print(run_id, owners.owner_tag()[owners.OWNER], flush=True)
sys.stdin.readline()
client.set_terminated(run_id, "FINISHED")
"""


def test_a_run_ended_just_before_its_owner_exits_is_never_killed(tmp_path):
    """The race that once ended a live run KILLED: the sweep searched while a
    process owned the run; the process ended it and exited; the sweep then
    judged the owner from its search and found it dead. Here the end and the
    exit happen exactly in that gap, every time."""
    import subprocess
    import sys

    from mlflow import MlflowClient

    from pipeline.tracking.owners import end_if_orphaned, owned_running

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("race", artifact_location=(tmp_path / "artifacts").as_uri())
    here = this_process()

    def stage():
        child = subprocess.Popen([sys.executable, "-c", STAGE, uri, experiment], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        run_id, tag = child.stdout.readline().strip().split(" ", 1)
        return child, run_id, tag

    child, run_id, tag = stage()
    assert owned_running(client, [experiment]) == [(run_id, tag)]  # the sweep's search: the process owns the run
    child.communicate("end\n", timeout=60)  # the process ends the run and exits
    assert child.returncode == 0
    assert why_killed(tag, here) is not None  # judged from the search alone, the owner is dead: the old bug
    assert not end_if_orphaned(client, run_id, tag, here)
    assert client.get_run(run_id).info.status == "FINISHED"

    child, run_id, tag = stage()  # a process killed outright, still holding its run, is found out
    assert owned_running(client, [experiment]) == [(run_id, tag)]
    child.kill()
    child.wait(timeout=60)
    assert end_if_orphaned(client, run_id, tag, here)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["killed"].startswith(f"owner process {child.pid} ")
