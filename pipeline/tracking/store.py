"""MLflow's store: where runs go, what they are called and tagged with, and the
batched calls that log to them.

The default store is mlflow.db at the repository root, named by an absolute
path so that DVC queue workers (which run in copies under .dvc/tmp/exps) write
to the same file; MLFLOW_TRACKING_URI overrides it, e.g. a team server.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shlex
import sqlite3
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlparse
from typing import Iterator

from pipeline.core.errors import PipelineError
from pipeline.tracking import owners

DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
BATCH_LIMITS = {"metrics": 1000, "params": 100}  # MLflow's per-call limits of log_batch
NOTE = "mlflow.note.content"  # the tag MLflow shows as an experiment's or run's description
# The tag that nests a run under another (mlflow.utils.mlflow_tags.MLFLOW_PARENT_RUN_ID, which
# would import all of MLflow here, before quiet_mlflow()).
PARENT = "mlflow.parentRunId"
# Tells MLflow's UI that an experiment trains models (its "Model training"
# views), rather than letting it guess or open the GenAI ones.
KIND = {"mlflow.experimentKind": "custom_model_development"}
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` listens unless told otherwise


def quiet_mlflow() -> None:
    # No usage telemetry: it phones home, and machines here have no internet.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow's INFO lines (database migrations, run links) would drown a
    # stage's own output and its one-line errors.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # With a tracking server MLflow prints two links each time a run ends (to
    # stdout, not through logging); the ad-hoc run prints one per run itself.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


quiet_mlflow()  # before anything imports mlflow


def repository_root(cwd: Path | None = None) -> Path:
    """The project directory, also from inside a DVC queue worker's copy."""
    here = (cwd or Path.cwd()).resolve()
    for path in (here, *here.parents):
        if path.name == "exps" and path.parent.name == "tmp" and path.parent.parent.name == ".dvc":
            return path.parent.parent.parent
    return here


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repository_root() / DB_NAME}"


def store_name() -> str:
    """The current store as the same words in every clone: the server's URI, or the repository's own mlflow.db."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DB_NAME


def ui_address(uri: str) -> str:
    """Where the MLflow UI of a store is: the tracking server itself for an
    http(s) URI, otherwise the local server that `mlflow ui` starts by default."""
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else LOCAL_UI


def run_url(uri: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_address(uri)}/#/experiments/{experiment_id}/runs/{run_id}"


def ui_command(uri: str) -> str | None:
    """The command that serves a local store's UI at LOCAL_UI; None for a server, which is its own UI."""
    return None if uri.startswith(("http://", "https://")) else f"mlflow ui --backend-store-uri {shlex.quote(uri)}"


def artifact_location(experiment: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside the default SQLite
    store, by absolute path (MLflow's default, ./mlruns, is relative to
    whichever directory a stage runs in). A server decides for itself."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return (repository_root() / ARTIFACTS_DIR / experiment).as_uri()


def experiment_id(client, name: str, description: str | None = None) -> str:
    """The named experiment's id, creating it if new; its description set
    when given. Processes running side by side (jobs of a parallel sweep) may
    all find it missing; those whose creation fails because another's came
    first use that one. The first call in a process ends the store's runs
    left RUNNING by killed processes (owners.end_orphans)."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            identifier = client.create_experiment(name, artifact_location=artifact_location(name), tags=KIND)
        except MlflowException:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment is not None:
        identifier = experiment.experiment_id
    if description and (experiment is None or experiment.tags.get(NOTE) != description):
        client.set_experiment_tag(identifier, NOTE, description)
    owners.end_orphans(client)
    return identifier


def quoted(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def connect():
    """An MlflowClient for the tracking store, failing fast with one line when
    a tracking server cannot be reached (MLflow would otherwise retry for
    minutes), or a SQLite store is damaged, cannot be created or cannot be
    written."""
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow.tracking import MlflowClient

    try:
        with opening_alone(uri):
            check_intact(uri)
            client = MlflowClient(uri)  # creates a SQLite store that does not exist yet
            client.search_experiments(max_results=1)
    except PipelineError:
        raise
    except Exception as error:  # MLflow wraps connection failures in several types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        path = sqlite_file(uri)
        if path is None:
            raise PipelineError(f"cannot reach the MLflow tracking store at {uri}: {reason}") from None
        if path.is_file() and not is_sqlite(path):
            raise PipelineError(f"the MLflow store {path} is not an SQLite database (corrupt, or another file): move "
                                f"it aside to start a new store, or set MLFLOW_TRACKING_URI") from None
        raise PipelineError(f"cannot open the MLflow store {path}: {reason}") from None
    if uri.startswith("sqlite:"):
        check_writable(uri)
        if not os.environ.get("MLFLOW_TRACKING_URI"):  # the repository's own store, not one chosen to share
            relocate_copied_store(sqlite_file(uri), repository_root())
    return client


# Where the project's own store keeps artifacts, per table of MLflow's schema: the places a copied store points
# back to the directory it was copied from.
ARTIFACT_COLUMNS = {"experiments": "artifact_location", "runs": "artifact_uri", "logged_models": "artifact_location"}


def relocate_copied_store(db: Path, root: Path) -> None:
    """A copy of the project (cp -a, a backup restored elsewhere) brings
    mlflow.db along, and its experiments keep their artifacts by absolute
    path (artifact_location): the copy would log into the original's
    mlartifacts/. When the store's own locations point into another
    directory's mlartifacts/ (or MLflow's mlruns/), point them at this
    repository's, in one transaction, and say so in one line. The copy
    brought those files along too; the original is left as it was."""
    here = root.resolve()
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as connection:
        locations = [row[0] for row in connection.execute("SELECT artifact_location FROM experiments")]
        homes = {home for location in locations if (home := artifact_home(location)) is not None and home != here}
        if not homes:
            return
        connection.execute("BEGIN IMMEDIATE")
        for home in homes:
            for directory in (ARTIFACTS_DIR, "mlruns"):
                for prefix in (f"{(home / directory).as_uri()}/", f"{home / directory}/"):
                    moved = f"{(here / directory).as_uri()}/" if prefix.startswith("file:") else f"{here / directory}/"
                    for table, column in ARTIFACT_COLUMNS.items():
                        connection.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                                           f"WHERE substr({column}, 1, ?) = ?",
                                           (moved, len(prefix) + 1, len(prefix), prefix))
        connection.execute("COMMIT")
    print(f"mlflow.db was copied from {', '.join(sorted(map(str, homes)))}: its runs now keep their artifacts in "
          f"{here / ARTIFACTS_DIR}")


def artifact_home(location: str | None) -> Path | None:
    """The directory holding the mlartifacts/ (or mlruns/) that an experiment's
    artifact location is in; None for anything else (a server's, an S3 bucket)."""
    parsed = urlparse(location or "")
    if parsed.scheme not in ("file", "") or not parsed.path.startswith("/"):
        return None
    for parent in Path(unquote(parsed.path)).parents:
        if parent.name in (ARTIFACTS_DIR, "mlruns"):
            return parent.parent
    return None


def is_sqlite(path: Path) -> bool:
    """Whether the file starts as every SQLite database does (an empty one is made into one)."""
    with open(path, "rb") as handle:
        header = handle.read(16)
    return not header or header == b"SQLite format 3\0"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite: URI; None for a server or an in-memory store."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    return Path(database).resolve() if database and database != ":memory:" else None


@contextlib.contextmanager
def opening_alone(uri: str) -> Iterator[None]:
    """Hold a lock (mlflow.db.lock, beside the store) while MLflow opens a
    SQLite store. Opening a new store creates its tables and migrates them
    step by step, unguarded: DVC queue workers started together on a new
    clone did so at once, and each failed on the other's half-done migration
    ("table _alembic_tmp_experiments already exists"), leaving a store no
    stage could open. Where the lock cannot be created (a read-only
    directory), MLflow or check_writable says what is wrong."""
    from filelock import FileLock

    path = sqlite_file(uri)
    with contextlib.ExitStack() as held:
        if path is not None:
            with contextlib.suppress(OSError):
                held.enter_context(FileLock(f"{path}.lock"))
        yield


def check_intact(uri: str) -> None:
    """Stop with one line if the store's file is damaged (a disk fault, a
    copy cut short, bytes overwritten mid-file): its header still reads as
    SQLite, so MLflow would open it and fail at whichever page it reaches
    first, mid-run. SQLite's quick check reads every page: about 60 ms for a
    60 MB store."""
    path = sqlite_file(uri)
    if path is None or not path.is_file() or not is_sqlite(path):
        return  # a new store, or not SQLite's: connect() says so
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return  # a file SQLite cannot open: MLflow reports that itself
    with contextlib.closing(connection):
        try:
            verdict = connection.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.OperationalError:
            return  # busy or unreadable, not damaged: MLflow reports that itself
        except sqlite3.DatabaseError as error:  # too damaged to check
            verdict = str(error)
    if verdict != "ok":
        raise PipelineError(f"the MLflow store {path} is damaged (SQLite: {verdict.splitlines()[-1]}): move it aside "
                            f"to start a new store (`sqlite3 {path.name} .recover` saves what it can), or set "
                            f"MLFLOW_TRACKING_URI")


def check_writable(uri: str) -> None:
    """Stop with one line if SQLite cannot write the store. A read-only
    mlflow.db (or its directory, where SQLite creates its journal) passes
    every read, and its first write fails deep in MLflow, with hundreds of
    lines of SQLAlchemy's traceback, after training. A write that SQLite
    itself answers, then rolled back, finds out in milliseconds."""
    path = sqlite_file(uri)
    if path is None:
        return
    try:  # mode=rw: never create a file (MLflow has created the store by now)
        connection = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error:
        return  # not a file SQLite can open: MLflow reports that itself
    with contextlib.closing(connection):  # closing rolls the probe back: the file is left as it was
        try:
            connection.execute("BEGIN")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            connection.execute(f"PRAGMA user_version = {version}")  # rewrites the header page
        except sqlite3.OperationalError as error:
            # Every SQLITE_READONLY_* code says this; a busy store (another
            # process writing) is no fault of the user's and is left to MLflow.
            if "readonly database" not in str(error):
                return
            if getattr(error, "sqlite_errorname", "") == "SQLITE_READONLY_DIRECTORY":  # Python 3.11+
                raise PipelineError(f"the MLflow store {path} is read-only (its directory is read-only, and SQLite "
                                    f"writes its journal there): make {path.parent} writable or set "
                                    f"MLFLOW_TRACKING_URI") from None
            raise PipelineError(f"the MLflow store {path} is read-only ({error}): make it writable or set "
                                f"MLFLOW_TRACKING_URI") from None


def flatten(data: object, prefix: str = "") -> dict[str, str]:
    """Nested config -> {'a.b.0': 'value'}: one short MLflow param per leaf,
    instead of whole sub-configs as long strings."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return {prefix: str(data)}
    flat: dict[str, str] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def pipeline_run_id(params_file: Path) -> str:
    """Shared by every run that one `dvc repro` (or `dvc exp run`) makes: the
    same params at the same commit. Group runs in the MLflow UI by this tag."""
    digest = hashlib.sha256(params_file.read_bytes())
    digest.update((git_commit() or "").encode())
    return os.environ.get("DVC_EXP_NAME") or digest.hexdigest()[:12]


def common_tags(dataset: str, source: str, group: str | None = None, **more: str) -> dict[str, str]:
    tags = {"dataset": dataset, "source": source, **more}
    if commit := git_commit():
        tags["mlflow.source.git.commit"] = commit
    if group:
        tags["pipeline_run"] = group
    return tags


def start_runs(client, experiment: str, names: list[str], tags: list[dict[str, str]], params: list[dict[str, str]],
               parent: str | None = None) -> list[str]:
    """One run per name, tagged and with its params, all RUNNING and owned by
    this process; nested under parent if given."""
    from mlflow.entities import Param

    experiment = experiment_id(client, experiment)
    run_ids = []
    owner = owners.owner_tag()  # with the run itself: a process killed right after still owns it
    try:
        for name, run_tags, run_params in zip(names, tags, params):
            nested = {PARENT: parent} if parent else {}
            run_id = client.create_run(experiment, run_name=name, tags=run_tags | nested | owner).info.run_id
            run_ids.append(run_id)
            entries = [Param(key, value) for key, value in run_params.items()]
            for start in range(0, len(entries), BATCH_LIMITS["params"]):
                client.log_batch(run_id, params=entries[start:start + BATCH_LIMITS["params"]])
    except BaseException:  # a signal between two runs: those already made must not stay RUNNING
        for run_id in run_ids:
            client.set_terminated(run_id, "FAILED")
        raise
    return run_ids


def log_metrics(client, run_id: str, points: list[tuple[str, float, int]], model_id: str | None = None) -> None:
    """(name, value, step) points in as few calls as MLflow allows; with
    model_id, they are that logged model's metrics too."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(name, float(value), now, step, model_id=model_id) for name, value, step in points]
    for start in range(0, len(metrics), BATCH_LIMITS["metrics"]):
        client.log_batch(run_id, metrics=metrics[start:start + BATCH_LIMITS["metrics"]])


@contextlib.contextmanager
def failing(client, run_ids: list[str]) -> Iterator[None]:
    """Mark the runs FAILED if the block raises (a signal included), FINISHED
    if it ends. Made by start_runs, they are this process's (owners): if
    it is killed outright (SIGKILL), the next process ends them KILLED."""
    try:
        yield
    except BaseException:
        # The store may be what failed (a server gone): then the runs stay RUNNING until the next
        # process finds their owner gone, and the error that counts is the block's.
        with contextlib.suppress(Exception):
            for run_id in run_ids:
                client.set_terminated(run_id, "FAILED")
        raise
    for run_id in run_ids:
        client.set_terminated(run_id, "FINISHED")


def log_model(run_id: str, module, example, package: Path, name: str, step: int = 0, dataset=None) -> str:
    """A torch module (class probabilities out) as the run's MLflow model,
    named, with a signature; the training data as the run's input, which
    fills the UI's Dataset column. Returns the model's id, for the metrics
    that belong to it."""
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    with torch.no_grad():
        signature = infer_signature(example.numpy(), module(example).numpy())
    mlflow.set_tracking_uri(tracking_uri())
    # We chose pickle knowingly (see below); its safety warning is noise here.
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
    with mlflow.start_run(run_id=run_id):
        if dataset is not None:
            mlflow.log_input(dataset, context="training")
        return mlflow.pytorch.log_model(
            module,
            name=name,
            step=step,
            signature=signature,
            serialization_format="pickle",  # torch.export ("pt2") costs seconds per run
            code_paths=[str(package)],  # the model's classes live in this package
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "pydantic>=2"],
        ).model_id


def warm_up() -> None:
    """For the warm worker, before it forks stages: MLflow checks every logged
    model's requirements against the installed packages, and its first check
    reads every package's metadata (0.8 s, once per process otherwise). The
    function is MLflow's own, and private: if it moves, stages just pay that."""
    from mlflow.utils import requirements_utils

    init = getattr(requirements_utils, "_init_packages_to_modules_map", None)
    if init is not None:
        init()
