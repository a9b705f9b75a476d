"""A strength search (pipeline.search) in MLflow: one run for the search in
the experiment <dataset>-search, and under it a run per trial, written as
each round of trials finishes.

    search l2.strength            the choice: its value, score and intervals as metrics,
    │                             the best score so far after each round (a history), the
    │                             trials' figure, and a description saying what was chosen
    └── trial 0 · l2.strength=0.0132, ...   the value as a param; every measure's mean and
                                            95% interval over seeds, and the score, as metrics
"""

from __future__ import annotations

from pathlib import Path

from pipeline.tracking.runs import estimates, interval_points
from pipeline.tracking.store import NOTE, log_metrics, start_runs


def experiment_name(dataset: str) -> str:
    return f"{dataset}-search"


def trial_run_name(number: int, key: str, value: float) -> str:
    return f"trial {number} · {key}={value:.4g}"


def log_trials(client, experiment: str, search_run: str, key: str, tags: dict[str, str], trials: list) -> None:
    """One finished run per trial (pipeline.usecases.search.Trial), nested under the search's run."""
    names = [trial_run_name(t.number, key, t.value) for t in trials]
    run_ids = start_runs(client, experiment, names,
                         [tags | {"kind": "trial", "trial": str(t.number)} for t in trials],
                         [{key: repr(t.value), "trial": str(t.number)} for t in trials], parent=search_run)
    for run_id, trial in zip(run_ids, trials):
        log_metrics(client, run_id, trial_points(trial, key))
        client.set_terminated(run_id, "FINISHED")


def trial_points(trial, key: str) -> list[tuple[str, float, int]]:
    """A trial's measures over seeds (estimates() leaves the row's strength
    out: it is logged under the swept key's name), its score and its value."""
    return [*estimates(trial.row), ("score", trial.score, 0), (key, trial.value, 0)]


def log_progress(client, search_run: str, best_score: float, trials_done: int) -> None:
    """The best score so far, a point per round: the search's convergence as a chart."""
    log_metrics(client, search_run, [("best_score", best_score, trials_done)])


def log_choice(client, search_run: str, key: str, best, figure: Path, description: str, compared=None) -> None:
    """The choice; compared (pipeline.usecases.search.PathComparison): the
    pipeline path's dev choice, as path_choice, and the paired test accuracy
    difference to it, as test_accuracy_minus_path_mean, _ci95_low, _ci95_high."""
    points = trial_points(best, key)
    if compared:
        points += [("path_choice", compared.strength, 0),
                   *interval_points("test_accuracy_minus_path", compared.difference)]
    log_metrics(client, search_run, points)
    client.log_artifact(search_run, str(figure))
    client.set_tag(search_run, NOTE, description)
