"""A team's tracking server, for real: `mlflow server` over a PostgreSQL
cluster this test starts (Debian's server binaries), with proxied artifacts,
and a small project's `dvc repro` and one ad-hoc run logging to it through
MLFLOW_TRACKING_URI. The runs are counted in PostgreSQL itself, and figures,
the report and a model are read back through the server."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import psycopg
import pytest
import yaml
from conftest import LOOPBACK, free_port, make_project, mlflow_server, run, wait_for_queue
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient
from PIL import Image

POSTGRES_BIN = max((path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
                   key=lambda path: int(path.parent.name), default=None)
pytestmark = pytest.mark.skipif(POSTGRES_BIN is None, reason="no PostgreSQL server in /usr/lib/postgresql/*/bin: "
                                                             "install Debian's (apt-get install postgresql)")

DATABASE, ROLE = "mlflow", "mlflow"
NOBODY = 65534  # PostgreSQL refuses to run as root, and tests and CI run as root
COMMAND_TIMEOUT = 60
SERVER_START_TIMEOUT = 120.0  # a new database: MLflow creates its tables (about 10 s on 2 idle cores)
ADHOC = ["dataset=moons", "regularization=[l2]", "seeds=[0,1]"]


def as_cluster_owner(args: list, home: Path) -> None:
    """Run a PostgreSQL program as the cluster's owner (nobody when we are root)."""
    owner = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if os.geteuid() == 0 else {}
    result = subprocess.run([str(arg) for arg in args], cwd=home, capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT, **owner)
    if result.returncode != 0:
        log = home / "postgres.log"
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stdout}{result.stderr}"
                             + (log.read_text() if log.exists() else ""))


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 at a free port, its unix
    socket in its own directory, trusting local connections; yields the
    SQLAlchemy URI of an empty database, as a team would give `mlflow server`.
    The directory is not under pytest's tmp_path, whose parents only root may
    enter."""
    home = Path(tempfile.mkdtemp(prefix="team-server-postgres-"))
    try:
        if os.geteuid() == 0:
            os.chown(home, NOBODY, NOBODY)
        data = home / "data"
        as_cluster_owner([POSTGRES_BIN / "initdb", "-D", data, "-U", ROLE, "--auth=trust", "-E", "UTF8",
                          "--locale=C", "--no-sync"], home)
        port = free_port()
        # A cluster thrown away after the test needs no durability: no fsync.
        options = f"-c listen_addresses={LOOPBACK} -p {port} -k {home} -c fsync=off -c synchronous_commit=off"
        as_cluster_owner([POSTGRES_BIN / "pg_ctl", "-D", data, "-l", home / "postgres.log", "-o", options,
                          "-w", "-t", COMMAND_TIMEOUT, "start"], home)
        try:
            with psycopg.connect(f"postgresql://{ROLE}@{LOOPBACK}:{port}/postgres", autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {DATABASE}")
            yield f"postgresql://{ROLE}@{LOOPBACK}:{port}/{DATABASE}"
        finally:
            as_cluster_owner([POSTGRES_BIN / "pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", COMMAND_TIMEOUT,
                              "stop"], home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> Iterator[dict]:
    """The cluster, the server over it (artifacts proxied into a folder of
    ours) and a small project, made while the server creates its tables."""
    folder = tmp_path_factory.mktemp("team")
    with postgres_cluster() as database, \
            mlflow_server(database, folder / "server.log", folder, "--artifacts-destination", str(folder / "artifacts"),
                          start_timeout=SERVER_START_TIMEOUT) as (url, ready, _):
        project = make_project(folder / "project")
        ready()
        yield {"database": database, "url": url, "project": project, "artifacts": folder / "artifacts"}


def query(database: str, sql: str) -> list[tuple]:
    with psycopg.connect(database) as connection:
        return connection.execute(sql).fetchall()


@pytest.mark.slow  # a real dvc repro, two queued experiments and a server over a new database: about 70 s
def test_the_pipeline_queue_workers_and_an_adhoc_run_log_to_a_postgresql_backed_server(team):
    project, url, database = team["project"], team["url"], team["database"]
    to_server = {"MLFLOW_TRACKING_URI": url}
    # Two clients at once, as in a team; and the ad-hoc run's start-up then overlaps DVC's bookkeeping.
    with ThreadPoolExecutor(max_workers=1) as side:
        adhoc = side.submit(run, [sys.executable, "-m", "pipeline.train", *ADHOC], project, to_server)
        run(["dvc", "repro"], project, to_server)
        adhoc = adhoc.result()
    report = [line for line in adhoc.stdout.splitlines() if not line.startswith("training: ")]  # progress lines
    assert report[0] == f"ad-hoc moons/l2: MLflow experiment moons-adhoc in {url}"
    adhoc_runs = re.findall(rf"^    {re.escape(url)}/#/experiments/\d+/runs/(\w+)$", adhoc.stdout, re.MULTILINE)
    assert len(adhoc_runs) == 2  # each seed's run, on the server's own UI (not `mlflow ui`'s default address)

    # In PostgreSQL: the pipeline run's parent, a run per recipe and one per its
    # seeds, the path's run and one per strength; the ad-hoc run's two seeds; all ended.
    runs = query(database, """
        SELECT e.name, coalesce(kind.value, source.value), r.status, count(*)
        FROM runs r JOIN experiments e USING (experiment_id)
        LEFT JOIN tags kind ON kind.run_uuid = r.run_uuid AND kind.key = 'kind'
        LEFT JOIN tags source ON source.run_uuid = r.run_uuid AND source.key = 'source'
        WHERE r.lifecycle_stage = 'active' GROUP BY 1, 2, 3 ORDER BY 1, 2""")
    assert runs == [("moons", "path", "FINISHED", 1), ("moons", "path strength", "FINISHED", 3),
                    ("moons", "pipeline", "FINISHED", 1), ("moons", "recipe", "FINISHED", 2),
                    ("moons", "seed", "FINISHED", 4),
                    ("moons-adhoc", "seed", "FINISHED", 2)]
    models = query(database, "SELECT e.name, m.name, m.status, m.artifact_location FROM logged_models m "
                             "JOIN experiments e USING (experiment_id) ORDER BY 1, 2")
    done = LoggedModelStatus.READY
    assert [(experiment, name, LoggedModelStatus.from_int(status)) for experiment, name, status, _ in models] == [
        *(("moons", f"{recipe}-seed-{seed}", done) for recipe in ("baseline", "l2") for seed in (0, 1)),
        *(("moons-adhoc", f"l2-seed-{seed}", done) for seed in (0, 1))]
    # Clients were handed the server's proxied artifact store, never a path of theirs.
    locations = query(database, "SELECT artifact_uri FROM runs UNION ALL SELECT artifact_location FROM experiments")
    assert all(location.startswith("mlflow-artifacts:/") for location, in locations), locations

    # Read back through the server: a decision boundary, the report, a model.
    client = MlflowClient(url)
    downloads = project.parent / "downloads"
    experiment = client.get_experiment_by_name("moons").experiment_id
    l2_seed_0, = [r.info.run_id for r in client.search_runs([experiment], "tags.recipe = 'l2' and tags.seed = '0'")]
    boundary, = [a.path for a in client.list_artifacts(l2_seed_0, "images")
                 if a.path.startswith("images/decision_boundary+step+0+") and a.path.endswith(".png")]
    with Image.open(client.download_artifacts(l2_seed_0, boundary, str(downloads))) as served, \
            Image.open(project / "plots/moons/l2/seed_0/decision_boundary.png") as drawn:
        assert served.format == "PNG" and served.size == drawn.size
        assert np.array_equal(np.asarray(served), np.asarray(drawn.convert("RGB")))
    parent, = client.search_runs([client.get_experiment_by_name("moons").experiment_id], "tags.kind = 'pipeline'")
    summary = client.download_artifacts(parent.info.run_id, "summary.md", str(downloads))
    assert Path(summary).read_text() == (project / "reports/moons/summary.md").read_text()
    model_location, = [location for experiment, name, _, location in models
                       if (experiment, name) == ("moons", "l2-seed-0")]
    description = mlflow.artifacts.download_artifacts(f"{model_location}/MLmodel", dst_path=str(downloads),
                                                      tracking_uri=url)
    assert "pytorch" in yaml.safe_load(Path(description).read_text())["flavors"]
    # ... and the bytes live in the server's artifact folder, not the project's.
    assert (team["artifacts"] / model_location.removeprefix("mlflow-artifacts:/") / "MLmodel").is_file()
    assert not (project / "mlartifacts").exists() and not (project / "mlflow.db").exists()

    # DVC's queue workers, two at once in copies of the project, log there too
    # (they take the variable from `dvc queue start`'s environment).
    run(["dvc", "exp", "run", "--queue", "-S", "seeds=[2],[3]", "-S", "~paths.l2"], project, to_server)
    run(["dvc", "queue", "start", "-j", "2"], project, to_server)
    tasks = wait_for_queue(project)
    assert sorted(tasks.values()) == ["Success", "Success"], tasks
    queued = query(database, f"""
        SELECT kind.value, r.status, count(*) FROM runs r
        JOIN tags pipeline_run ON pipeline_run.run_uuid = r.run_uuid AND pipeline_run.key = 'pipeline_run'
        JOIN tags kind ON kind.run_uuid = r.run_uuid AND kind.key = 'kind'
        WHERE pipeline_run.value IN ({", ".join(f"'{name}'" for name in tasks)}) GROUP BY 1, 2 ORDER BY 1""")
    assert queued == [("pipeline", "FINISHED", 2), ("recipe", "FINISHED", 4),  # baseline and l2 of each experiment
                      ("seed", "FINISHED", 4)]
    assert not (project / "mlflow.db").exists()


def test_a_search_logs_to_the_server_and_keeps_its_study_in_its_database(team):
    """The study goes into the server's own PostgreSQL database, in a schema
    of its own: Optuna's and MLflow's schema versions share a table name."""
    project, url, database = team["project"], team["url"], team["database"]
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA optuna")
    storage = f"{database}?options=-csearch_path%3Doptuna"
    result = run([sys.executable, "-m", "pipeline.search", "seeds=[0,1]", "search.trials=2", "search.batch=2",
                  f"search.storage='{storage}'"], project, {"MLFLOW_TRACKING_URI": url})
    assert f"in {storage}" in result.stdout and f"{url}/#/experiments/" in result.stdout
    assert query(database, "SELECT count(*) FROM optuna.trials WHERE state = 'COMPLETE'") == [(2,)]
    runs = query(database, """
        SELECT kind.value, r.status, count(*) FROM runs r JOIN experiments e USING (experiment_id)
        JOIN tags kind ON kind.run_uuid = r.run_uuid AND kind.key = 'kind'
        WHERE e.name = 'moons-search' GROUP BY 1, 2 ORDER BY 1""")
    assert runs == [("search", "FINISHED", 1), ("trial", "FINISHED", 2)]
    assert not (project / "optuna.db").exists()
