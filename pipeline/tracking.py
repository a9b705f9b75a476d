"""MLflow: where runs go, what they are called, what they are tagged with.

The default store is mlflow.db at the repository root, named by an absolute
path so that DVC queue workers (which run in copies under .dvc/tmp/exps) write
to the same file; MLFLOW_TRACKING_URI overrides it, e.g. a team server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from pipeline.errors import PipelineError

DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"



def quiet_mlflow() -> None:
    # No usage telemetry: it phones home, and machines here have no internet.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow's INFO lines (database migrations, run links) would drown a
    # stage's own output and its one-line errors.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


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


def artifact_location(experiment: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside the default SQLite
    store, by absolute path (MLflow's default, ./mlruns, is relative to
    whichever directory a stage runs in). A server decides for itself."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    return (repository_root() / ARTIFACTS_DIR / experiment).as_uri()


def experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(name))


def connect():
    """An MlflowClient for the tracking store, failing fast with one line when
    a tracking server cannot be reached (MLflow would otherwise retry for minutes)."""
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as error:  # MLflow wraps connection failures in several types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PipelineError(f"cannot reach the MLflow tracking store at {uri}: {reason}") from None
    return client


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


def run_tags(dataset: str, recipe: str, seed: int, data_sha256: str, source: str, group: str | None = None
             ) -> dict[str, str]:
    tags = {"dataset": dataset, "recipe": recipe, "seed": str(seed), "data_sha256": data_sha256, "source": source}
    if commit := git_commit():
        tags["mlflow.source.git.commit"] = commit
    if group:
        tags["pipeline_run"] = group
    return tags
