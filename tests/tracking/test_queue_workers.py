"""The default SQLite store under DVC's parallel queue workers, for real:
experiments queued in a small project and run by `dvc queue start -j 2`,
whose stages run in copies under .dvc/tmp/exps and log to the project's own
mlflow.db at once. No run may be lost, and no worker may meet a locked or
half-created store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import mlflow_client, run, wait_for_queue

SEEDS = [0, 1]  # one experiment per seed: no stage's output is shared, so every stage runs and logs
RECIPES = ["baseline", "l2"]  # the small project's suite
@pytest.mark.slow  # two experiments through DVC's queue at once: about 35 s on 2 idle cores
def test_parallel_queue_workers_lose_no_run_and_never_find_the_store_locked(project):
    # The smallest pipeline that still runs two experiments side by side: no
    # path, one seed per experiment, one sweep queueing both.
    seeds = ",".join(f"[{seed}]" for seed in SEEDS)
    # The data first: workers that run the same stage at once race in DVC's run cache (3.67: one's
    # temporary file vanishes, "No such file or directory: .dvc/cache/runs/.../*.tmp").
    run(["dvc", "repro", "split@moons"], project)
    run(["dvc", "exp", "run", "--queue", "-S", f"seeds={seeds}", "-S", "~paths.l2"], project)
    run(["dvc", "queue", "start", "-j", "2"], project)
    tasks = wait_for_queue(project)

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        logs = dict(zip(tasks, pool.map(lambda name: run(["dvc", "queue", "logs", name], project).stdout, tasks)))
    assert tasks == {name: "Success" for name in tasks} and len(tasks) == len(SEEDS), \
        "\n".join(f"== {name}: {status}\n{logs[name]}" for name, status in tasks.items())
    for name, log in logs.items():
        assert "database is locked" not in log, f"== {name}\n{log}"

    # One store, at the project's root (the workers ran in copies under .dvc/tmp/exps):
    # a pipeline run per experiment, named by it, holding a run per recipe of its seed; all ended.
    assert not list((project / ".dvc/tmp/exps").rglob("mlflow.db"))
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("moons").experiment_id
    runs = client.search_runs([experiment])
    parents = {r.data.tags["pipeline_run"]: r for r in runs if r.data.tags["kind"] == "pipeline"}
    assert sorted(parents) == sorted(tasks)
    below = {}
    for r in runs:
        below.setdefault(r.data.tags.get("mlflow.parentRunId"), []).append(r)
    seeds = {name: sorted((r.data.tags["recipe"], int(r.data.tags["seed"])) for recipe_run in below[parent.info.run_id]
                          for r in below[recipe_run.info.run_id])
             for name, parent in parents.items()}
    seed_of = {name: pairs[0][1] for name, pairs in seeds.items()}
    assert sorted(seed_of.values()) == SEEDS
    assert seeds == {name: [(recipe, seed_of[name]) for recipe in RECIPES] for name in parents}
    assert len(runs) == len(SEEDS) * (1 + 2 * len(RECIPES))  # the parent, and per recipe its run and its seed's
    assert {r.info.status for r in runs} == {"FINISHED"}
