"""A strength search scored over seeds. Hyperparameter tools score a trial
on one seed; here Optuna asks for a batch of trials, every seed of every
trial trains as one batch (the engine's model axis), and each trial's score
is the seed mean of its dev accuracy, or the lower end of that mean's 95%
interval. Test accuracy is measured for the record, never for the choice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.analysis.evaluation import evaluate
from pipeline.analysis.regularization_path import by_strength, from_csv, rows, select
from pipeline.analysis.statistics import paired_difference
from pipeline.config import PipelineConfig, SearchConfig
from pipeline.core.errors import PipelineError
from pipeline.core.paths import path_table
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member
from pipeline.techniques import TECHNIQUES
from pipeline.usecases.training import train


@dataclass
class Trial:
    number: int  # Optuna's, from 0
    value: float  # of the swept key
    row: dict  # by_strength()'s: every measure's mean and 95% interval over seeds
    score: float  # what Optuna maximizes
    test_accuracies: list[float]  # per seed, in the config's order of seeds: for paired comparisons


def swept_key(config: SearchConfig) -> str:
    """The searched value's name, as a path names it: l2.strength, dropout.keep_prob, ..."""
    return f"{config.search.sweep}.{TECHNIQUES[config.search.sweep].sweeps}"


def score(row: dict, kind: str) -> float:
    dev = row["dev_accuracy"]
    return dev["mean"] if kind == "mean" else dev["ci95_low"]


def open_storage(url: str):
    """Optuna's store at url, its tables made if new; one line if it cannot be opened."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return optuna.storages.RDBStorage(url)
    except (SQLAlchemyError, ValueError, RuntimeError) as error:  # RuntimeError: another schema (mlflow.db)
        reason = str(error).strip().splitlines()[0]
        raise PipelineError(f"the Optuna study store {url} cannot be opened ({reason}): set search.storage to "
                            f"the SQLAlchemy URL of a database of its own") from None


def search(config: SearchConfig, splits: Splits, storage, study_name: str,
           record: Callable[[list[Trial]], None], progress: str | None = None) -> tuple[list[Trial], Trial]:
    """Every trial, and the best (the first of the highest score), after
    handing each round's trials to record as they finish; the study is kept
    in storage (open_storage's)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial otherwise; ours say more
    settings, path, key = config.search, config.range(), swept_key(config)
    # The constant liar keeps a batch's asked trials apart: without it, TPE
    # would propose the same region for every trial of a batch.
    sampler = optuna.samplers.TPESampler(seed=settings.sampler_seed, constant_liar=True)
    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize", sampler=sampler)
    done: list[Trial] = []
    seeds = config.seeds
    while len(done) < settings.trials:
        asked = [study.ask() for _ in range(min(settings.batch, settings.trials - len(done)))]
        values = [trial.suggest_float(key, settings.low, settings.high, log=settings.log) for trial in asked]
        members = [Member(seed, path.recipe_at(value), label=f"{key} {value:g}, seed {seed}")
                   for value in values for seed in seeds]
        training = train(members, config.model, config.trainer, splits, progress=progress, boundaries=False)
        documents, _ = evaluate(training.trained.net, splits, config.analysis.sparsity_threshold)
        table = rows(values, seeds, documents, TECHNIQUES[settings.sweep].statistic)
        finished = []
        for i, (trial, value) in enumerate(zip(asked, values)):
            networks = table[i * len(seeds):(i + 1) * len(seeds)]
            [row] = by_strength(networks)  # one trial: one strength
            finished.append(Trial(trial.number, value, row, score(row, settings.score),
                                  [network["test_accuracy"] for network in networks]))
            study.tell(trial, finished[-1].score)
        record(finished)
        done += finished
    return done, done[study.best_trial.number]


@dataclass
class PathComparison:
    path: str  # its name in params.yaml
    strength: float  # the path's dev choice
    test_accuracy: dict  # the path's, at that strength: mean and 95% interval over seeds
    difference: dict  # the search's choice minus the path's, test accuracy paired by seed


def against_the_path(config: SearchConfig, best: Trial, pipeline: PipelineConfig | None,
                     current: Callable[[str], bool]) -> PathComparison | None:
    """The search's choice against the dev choice of the pipeline's path over
    the same technique, from the path stage's table, when params.yaml trains
    that path's recipe on the same data, model, trainer and seeds (so each
    seed's network at a strength is the very network the search would train)
    and current(stage) finds the stage's outputs made from params.yaml as it is.
    None otherwise."""
    if pipeline is None or pipeline.datasets.get(config.dataset_name) != config.dataset:
        return None
    if (pipeline.model, pipeline.trainer, pipeline.seeds) != (config.model, config.trainer, config.seeds):
        return None
    names = [name for name, path in pipeline.paths.items()
             if path.sweep == config.search.sweep and path.recipe == config.regularization]
    if not names or not current(f"path@{config.dataset_name}"):
        return None
    networks = from_csv(path_table(config.dataset_name, names[0]).read_text())
    chosen = select(by_strength(networks))
    if chosen is None:
        return None
    by_seed = {row["seed"]: row["test_accuracy"] for row in networks if row["strength"] == chosen["strength"]}
    return PathComparison(names[0], chosen["strength"], chosen["test_accuracy"],
                          paired_difference(best.test_accuracies, [by_seed[seed] for seed in config.seeds]))
