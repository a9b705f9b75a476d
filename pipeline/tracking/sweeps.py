"""A sweep of ad-hoc runs (`python -m pipeline.train -m ...`) as one MLflow
parent run with every job's runs nested under it, whichever Hydra launcher
runs the jobs: in this process (basic), in worker processes (joblib), or as
submitit jobs on this machine or a SLURM cluster.

Hydra calls SweepRun (conf/train.yaml's hydra.callbacks) in the launching
process before the first job and after the last: it creates the parent there
and ends it there. Each job learns the parent's id from the variable
SWEEP_RUN_VARIABLE, set by on_job_start in the job's own process from the
callback, which Hydra's launchers ship to their jobs with the rest of the
sweep's context: no launcher needs to pass the environment on.

A sweep's runs go to one experiment, ``adhoc-sweeps``, so that a sweep over
datasets still has one parent; the `dataset` tag tells its runs apart.

A job in a process the launcher started (joblib's workers, submitit_local's
jobs) dies with the launcher, even when it is killed outright: by SIGKILL,
since a joblib worker that handled SIGTERM went on waiting minutes for its
dead launcher's next job; the next run of the project ends its runs KILLED
(owners). A launcher stopped by Ctrl-C or SIGTERM ends the runs that its
jobs' killed processes left RUNNING (joblib kills its workers with SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipeline.core.processes import die_with_parent
from pipeline.tracking import owners
from pipeline.tracking.store import NOTE, PARENT, connect, experiment_id, git_commit, quoted, run_url, tracking_uri

EXPERIMENT = "adhoc-sweeps"
SWEEP_RUN_VARIABLE = "ADHOC_SWEEP_RUN"

# The parent this process opened and has not ended yet, for failing_sweep()
# to end when a job's failure (or a signal) ends the sweep before on_multirun_end.
_open: list[str] = []
# How long a stopped sweep waits for its jobs' processes to go before it ends their runs.
JOBS_GONE_SECONDS = 10


class SweepRun(Callback):
    def __init__(self) -> None:
        self.run_id: str | None = None
        self.launcher: int | None = None  # the launching process's pid

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        client = connect()
        overrides = " ".join(config.hydra.overrides.task)
        name = f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}"
        launcher = OmegaConf.select(config, "hydra.runtime.choices.hydra/launcher", default="basic")
        tags = {"source": "adhoc", "kind": "sweep", "launcher": launcher, **owners.owner_tag(),
                NOTE: (f"A sweep of ad-hoc runs (Hydra multirun, {launcher} launcher): `python -m pipeline.train -m "
                       f"{overrides}`. Its jobs' runs, one per job and seed, are nested under it.")}
        if commit := git_commit():
            tags["mlflow.source.git.commit"] = commit
        self.run_id = client.create_run(experiment_id(client, EXPERIMENT), run_name=name, tags=tags).info.run_id
        _open.append(self.run_id)
        self.launcher = os.getpid()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run_id is None:  # a single run (no -m)
            return
        os.environ[SWEEP_RUN_VARIABLE] = self.run_id
        if os.getpid() != self.launcher and os.getppid() == self.launcher:  # a worker the launcher started
            die_with_parent(signal.SIGKILL)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run_id is None:
            return
        client = connect()
        runs = client.search_runs([experiment_id(client, EXPERIMENT)], f"tags.`{PARENT}` = {quoted(self.run_id)}",
                                  max_results=50000)
        failed = [run for run in runs if run.info.status != "FINISHED"]
        client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
        _open.remove(self.run_id)
        print(f"sweep: {len(runs)} runs nested under "
              f"{run_url(tracking_uri(), experiment_id(client, EXPERIMENT), self.run_id)}", flush=True)


def sweep_run() -> str | None:
    """The id of the sweep's parent run, in one of its jobs; None outside a sweep."""
    return os.environ.get(SWEEP_RUN_VARIABLE)


@contextlib.contextmanager
def failing_sweep() -> Iterator[None]:
    """End FAILED the sweep's parent run if the block (the whole sweep, in
    the launching process) raises: Hydra calls no callback when a job fails."""
    try:
        yield
    except BaseException:
        if _open:
            client = connect()
            experiment = experiment_id(client, EXPERIMENT)
            for run_id in _open:
                client.set_terminated(run_id, "FAILED")
                jobs = owners.owned_running(client, [experiment], f"tags.`{PARENT}` = {quoted(run_id)}")
                owners.end_when_gone(client, jobs, within=JOBS_GONE_SECONDS)
            _open.clear()
        raise
