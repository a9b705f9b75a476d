"""Stage track: one pipeline run of one dataset into MLflow, from the files the
other stages wrote (see pipeline.usecases.recording for the run tree), into
whatever store is current: mlflow.db beside the repository, or the server
that MLFLOW_TRACKING_URI names. Prints the address of the view that opens
the comparison in MLflow's UI (pipeline.tracking.views).

    python -m pipeline.stages.track moons

Writes reports/<dataset>/tracked.json, which names the store it wrote.
DVC neither caches nor commits it, so a fresh clone lacks it and its
`dvc repro` records the pipeline run into its own store, even when every
other output is unchanged.
"""

from __future__ import annotations

import argparse

from pipeline.config import load_params
from pipeline.core.atomic import write_json
from pipeline.core.errors import cli
from pipeline.core.paths import tracked_path
from pipeline.data.splits import load_splits
from pipeline.tracking.store import store_name, tracking_uri, ui_command
from pipeline.usecases.recording import record_pipeline_run


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    dataset = parser.parse_args(argv).dataset
    params = load_params()
    params.dataset(dataset)
    store = store_name()  # before MLflow, which sets MLFLOW_TRACKING_URI once connected
    address = record_pipeline_run(dataset, params, load_splits(dataset))
    # the same bytes in every clone and at every commit, so that dvc.lock does not change with each run
    write_json(tracked_path(dataset), {"dataset": dataset, "store": store})
    start = f" (start the UI first: {command})" if (command := ui_command(tracking_uri())) else ""
    print(f"track {dataset}: the comparison in MLflow: {address}{start}")


if __name__ == "__main__":
    main()
