"""Which process owns a RUNNING MLflow run, and ending as KILLED the runs
whose owner was killed outright.

An exception, Ctrl-C or SIGTERM ends a process's runs FAILED (store.failing);
SIGKILL, the OOM killer or a machine that dies give it no chance to, and the
runs would show RUNNING forever. So a run carries an `owner` tag naming the
process that is to end it, and the first time a process logs into a store it
ends as KILLED the RUNNING runs, in every experiment, whose owner on this
machine is gone: whoever left them (a stage, an ad-hoc run, a sweep's job or
its launcher), the next run of the project ends them.

An owner is named by its machine (host name and machine id), boot, PID
namespace, pid and the pid's start time in clock ticks after boot
(/proc/<pid>/stat): a later process given the same pid is not taken for it,
and a restart ends every owner of the boot before. Runs owned on another
machine (a team server's) or in another PID namespace (another container's)
are left alone: whether their process lives cannot be seen from here. Needs
Linux's /proc; elsewhere runs get no owner and nothing is ended.

A pipeline's runs are all written by one stage (track), which owns them from
creation to end.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

OWNER = "owner"
KILLED = "killed"  # the tag that says why a run was ended KILLED
PROC = Path("/proc")

# Stores this process has looked at: one search each per process.
_looked_at: set[str] = set()


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def started(pid: int) -> str | None:
    """The process's start time in clock ticks after boot; None if no such
    process is alive (a zombie has ended too). psutil's create_time adds the
    wall clock's boot time, which shifts when the clock is adjusted, so it
    cannot be compared across processes exactly; the raw field can."""
    stat = _read(PROC / str(pid) / "stat")
    if not stat:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces and ')'
    state, start = fields[0], fields[19]  # fields 3 and 22 of proc(5)
    return None if state in ("Z", "X") else start


def this_process() -> dict[str, str] | None:
    """Who owns what this process makes; read afresh, since stages are
    forked from a warm worker, which must not hand them its own pid."""
    pid = os.getpid()
    start, boot = started(pid), _read(PROC / "sys/kernel/random/boot_id")
    if start is None or not boot:
        return None
    try:
        pidns = os.readlink(PROC / "self/ns/pid")
    except OSError:
        pidns = ""
    # machine-id tells apart machines that share a host name ("vm", "localhost");
    # without one, the machine is known by its boot only.
    machine = _read(Path("/etc/machine-id")) or f"boot-{boot}"
    return {"host": socket.gethostname(), "machine": machine, "boot": boot, "pidns": pidns, "pid": str(pid),
            "start": start}


def owner_tag() -> dict[str, str]:
    """The tag that makes this process the owner of a run, for create_run; {} without /proc."""
    owner = this_process()
    return {OWNER: " ".join(f"{key}={value}" for key, value in owner.items())} if owner else {}


def fields(tag: str | None) -> dict[str, str]:
    """An owner tag's fields (host, machine, boot, pidns, pid, start); raises ValueError if it is not one."""
    return dict(part.split("=", 1) for part in (tag or "").split())


def why_killed(tag: str | None, here: dict[str, str]) -> str | None:
    """Why the run with this owner tag is to be ended KILLED; None if its
    owner lives, may live, or cannot be seen from here (another machine or
    container), or if it has no owner (a run from before owners were
    recorded)."""
    try:
        owner = fields(tag)
        pid, host = owner["pid"], owner["host"]
        if (host, owner["machine"]) != (here["host"], here["machine"]):
            return None
        if owner["boot"] != here["boot"]:
            return f"owner process {pid} on {host} ended without ending the run (the machine restarted)"
        if owner["pidns"] != here["pidns"] or started(int(pid)) == owner["start"]:
            return None
    except (KeyError, ValueError):
        return None
    return f"owner process {pid} on {host} ended without ending the run"


def lives_here(tag: str, here: dict[str, str]) -> bool:
    """The owner is a live process of this machine, boot and PID namespace."""
    try:
        owner = fields(tag)
        return (all(owner[key] == here[key] for key in ("host", "machine", "boot", "pidns"))
                and started(int(owner["pid"])) == owner["start"])
    except (KeyError, ValueError):
        return False


def owned_running(client, experiment_ids: list[str], among: str = "") -> list[tuple[str, str]]:
    """(run id, owner tag) of the experiments' RUNNING runs that have an owner
    (and match the filter `among`, if given). One search (one page: 1 000
    runs; more are left to later processes); deleted runs too, so that a
    restored run does not come back RUNNING."""
    from mlflow.entities import ViewType

    query = "attributes.status = 'RUNNING'" + (f" and {among}" if among else "")
    runs = client.search_runs(experiment_ids, query, run_view_type=ViewType.ALL)
    return [(run.info.run_id, run.data.tags[OWNER]) for run in runs if OWNER in run.data.tags]


def end_if_orphaned(client, run_id: str, tag: str, here: dict[str, str]) -> bool:
    """End the run KILLED, with a `killed` tag saying why, if its owner (as
    tag names it) has ended and the run is still RUNNING under that owner.

    The order closes a race: the owner is judged dead first, then the run is
    read again. A process that ended the run and exited after the search did
    so before it died, so the fresh read shows the run ended; a run still
    RUNNING under its owner's tag after the owner died was never ended."""
    reason = why_killed(tag, here)
    if reason is None:
        return False
    run = client.get_run(run_id)
    if run.info.status != "RUNNING" or run.data.tags.get(OWNER) != tag:
        return False
    client.set_tag(run_id, KILLED, reason)
    client.set_terminated(run_id, "KILLED")
    return True


def end_orphans(client) -> list[str]:
    """End as KILLED the store's RUNNING runs, in every experiment, whose
    owner on this machine has ended; once per process and store. Returns
    their ids."""
    from mlflow.entities import ViewType

    if client.tracking_uri in _looked_at or (here := this_process()) is None:
        return []
    _looked_at.add(client.tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL, max_results=1000)]
    return [] if not experiments else [run_id for run_id, tag in owned_running(client, experiments)
            if end_if_orphaned(client, run_id, tag, here)]


def end_when_gone(client, running: list[tuple[str, str]], within: float) -> list[str]:
    """End KILLED those of the running runs, (run id, owner tag) as
    owned_running gives them, whose owner on this machine ends within
    `within` seconds (a sweep's jobs its launcher just stopped); runs whose
    owner lives on, or lives elsewhere, are left to it."""
    if (here := this_process()) is None:
        return []
    ended, deadline = [], time.monotonic() + within
    for run_id, tag in running:
        while lives_here(tag, here) and time.monotonic() < deadline:
            time.sleep(0.1)
        if end_if_orphaned(client, run_id, tag, here):
            ended.append(run_id)
    return ended
