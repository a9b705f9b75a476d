"""A strength search outside DVC, with Hydra overrides of conf/search.yaml:

    python -m pipeline.search                                  # l2.strength on moons, 24 trials x 8 seeds
    python -m pipeline.search dataset=circles search.score=lower
    python -m pipeline.search regularization=[l1] search.sweep=l1 search.trials=40

Optuna's TPE sampler asks for search.batch trials at a time; every seed of
every trial of a batch trains at once, and each trial's score is over its
seeds (pipeline.usecases.search). The study is kept in optuna.db beside
mlflow.db (or search.storage); each trial is an MLflow run nested under the
search's run in the experiment <dataset>-search, whose address is printed.
Nothing is written into the repository but the two stores.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pipeline.analysis import figures
from pipeline.config import PARAMS_FILE, PipelineConfig, SearchConfig, load_params
from pipeline.core.errors import PipelineError, cli
from pipeline.core.schema import validate
from pipeline.data.splits import checksum, split_source
from pipeline.params import compose_choosing
from pipeline.techniques import TECHNIQUES
from pipeline.tracking import searches
from pipeline.tracking.store import (common_tags, connect, experiment_id, failing, flatten, repository_root,
                                     run_url, start_runs, tracking_uri, ui_command)
from pipeline.usecases.search import PathComparison, Trial, against_the_path, open_storage, search, swept_key

CONFIG_NAME = "search"
STUDY_FILE = "optuna.db"
SCORES = {"mean": "the seed mean of dev accuracy", "lower": "the lower end of the 95% interval of mean dev accuracy"}


def storage_url(setting: str | None) -> str:
    """The Optuna study's store. Not mlflow.db itself: Optuna and MLflow each
    keep their schema's version in a table of the same name (alembic_version),
    so one file cannot hold both."""
    return setting or f"sqlite:///{repository_root() / STUDY_FILE}"


def estimate(row: dict, measure: str) -> str:
    e = row[measure]
    bounds = f" [{e['ci95_low']:.4f}, {e['ci95_high']:.4f}]" if e["ci95_low"] is not None else ""
    return f"{e['mean']:.4f}{bounds}"


def pipeline_params() -> PipelineConfig | None:
    """params.yaml, when there is a valid one: the search runs without it."""
    try:
        return load_params() if PARAMS_FILE.exists() else None
    except PipelineError:
        return None


def stage_current(stage: str) -> bool:
    """Whether DVC finds the stage's outputs made from its dependencies and
    params as they are now (`dvc status STAGE` has nothing to say)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            return not repo.status(targets=[stage])
    except DvcException:  # no DVC repository here, or no such stage
        return False


def signed(estimate: dict) -> str:
    return (f"{estimate['mean']:+.4f} [{estimate['ci95_low']:+.4f}, {estimate['ci95_high']:+.4f}]"
            if estimate["ci95_low"] is not None else f"{estimate['mean']:+.4f}")


def comparison(key: str, compared: PathComparison, seeds: int) -> str:
    test = compared.test_accuracy
    return (f"against the pipeline's {compared.path} path ({compared.path}.csv), whose dev choice is {key} = "
            f"{compared.strength:g} (test accuracy {test['mean']:.4f} [{test['ci95_low']:.4f}, "
            f"{test['ci95_high']:.4f}]): the search's choice minus the path's, test accuracy paired over {seeds} "
            f"seeds, {signed(compared.difference)}")


def choice(key: str, best: Trial, trials: int) -> str:
    return (f"chosen on dev: {key} = {best.value!r} (trial {best.number} of {trials}): "
            f"dev accuracy {estimate(best.row, 'dev_accuracy')}, test accuracy {estimate(best.row, 'test_accuracy')}")


def composed(overrides: list[str]) -> SearchConfig:
    """conf/search.yaml with the overrides, validated; the dataset's name is its group choice."""
    data, choices = compose_choosing(CONFIG_NAME, overrides)
    return validate(SearchConfig, {**data, "dataset_name": choices["dataset"]}, "conf/search.yaml with overrides")


@cli
def main(argv: list[str] | None = None) -> None:
    config = composed(sys.argv[1:] if argv is None else argv)
    settings, key, dataset = config.search, swept_key(config), config.dataset_name
    splits = split_source(dataset, config.dataset.source, config.dataset.split)
    storage = storage_url(settings.storage)
    study_store = open_storage(storage)  # before any run: a store that cannot be opened leaves nothing behind
    client = connect()
    experiment = searches.experiment_name(dataset)
    tags = common_tags(dataset, "search", data_sha256=checksum(splits), recipe="+".join(config.regularization.techniques()))
    params = flatten(config.model_dump(mode="json", exclude={"analysis"}, exclude_none=True))
    [search_run] = start_runs(client, experiment, [f"search {key}"], [tags | {"kind": "search"}], [params])
    study = f"{dataset} {key} {search_run}"
    client.set_tag(search_run, "optuna_study", study)
    best_so_far: list[float] = []

    def record(finished: list[Trial]) -> None:
        searches.log_trials(client, experiment, search_run, key, tags, finished)
        best_so_far.append(max([*best_so_far, *(t.score for t in finished)]))
        done = finished[-1].number + 1
        searches.log_progress(client, search_run, best_so_far[-1], done)
        print(f"  {done}/{settings.trials} trials: best score so far {best_so_far[-1]:.4f}", flush=True)

    print(f"search {dataset}/{key} in [{settings.low:g}, {settings.high:g}]: {settings.trials} trials x "
          f"{len(config.seeds)} seeds, {settings.batch} trials at once; score: {SCORES[settings.score]}", flush=True)
    with failing(client, [search_run]), tempfile.TemporaryDirectory() as tmp:
        trials, best = search(config, splits, study_store, study, record, progress="long")
        figure = Path(tmp) / "search.png"
        summary = sorted((t.row for t in trials), key=lambda row: row["strength"])
        figures.regularization_path(figure, summary, f"{dataset}: {len(trials)} trials of {key}", key,
                                    TECHNIQUES[settings.sweep].statistic, best.value)
        compared = against_the_path(config, best, pipeline_params(), stage_current)
        said = [choice(key, best, len(trials))]
        if compared:
            said.append(comparison(key, compared, len(config.seeds)))
        searches.log_choice(client, search_run, key, best, figure, "\n\n".join(said), compared)

    uri = tracking_uri()
    lines = [*(f"  {line}" for line in said),
             f"  Optuna study {study!r} in {storage}",
             f"  {run_url(uri, experiment_id(client, experiment), search_run)}"]
    if command := ui_command(uri):
        lines.append(f"  to open this link, start the UI: {command}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
