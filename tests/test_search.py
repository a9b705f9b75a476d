"""The strength search: `python -m pipeline.search` scores each Optuna trial
over its seeds, trains a batch of trials at once, keeps the study in
optuna.db and logs a run per trial nested under the search's run."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from conftest import edit_yaml, in_project, make_project, mlflow_client, run

from pipeline import search as search_command
from pipeline.analysis.evaluation import evaluate
from pipeline.analysis.regularization_path import by_strength, from_csv, select
from pipeline.config import SearchConfig
from pipeline.data.splits import split_source
from pipeline.engine.fit import Member
from pipeline.tracking.store import PARENT
from pipeline.usecases.search import open_storage, search
from pipeline.usecases.training import train

# six trials, three at a time, each over three seeds: two rounds of nine networks
SMALL = ["seeds=[0,1,2]", "search.trials=6", "search.batch=3", "search.low=0.01", "search.high=10"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("search") / "project")


def composed(project, *overrides: str) -> SearchConfig:
    return in_project(project, lambda: search_command.composed(list(overrides)))


def searched(project, capsys, *overrides: str) -> tuple[str, object, list]:
    """Run the search in this process (no second import of PyTorch); its output and its trial runs."""
    in_project(project, lambda: search_command.main([*SMALL, *overrides]))
    output = capsys.readouterr().out
    client = mlflow_client(project)
    experiment = client.get_experiment_by_name("moons-search").experiment_id
    [search_run] = client.search_runs([experiment], "tags.kind = 'search'", order_by=["attributes.start_time DESC"],
                                      max_results=1)
    trials = client.search_runs([experiment], f"tags.`{PARENT}` = '{search_run.info.run_id}'")
    return output, search_run, sorted(trials, key=lambda r: int(r.data.tags["trial"]))


def test_a_search_scores_every_trial_over_its_seeds_and_logs_it_under_the_search(project, capsys):
    output, search_run, trials = searched(project, capsys)
    assert search_run.info.status == "FINISHED" and len(trials) == 6
    assert all(t.info.status == "FINISHED" for t in trials)
    values = [float(t.data.params["l2.strength"]) for t in trials]
    assert all(0.01 <= v <= 10 for v in values) and len(set(values)) == 6
    scores = [t.data.metrics["score"] for t in trials]
    assert scores == [t.data.metrics["dev_accuracy_mean"] for t in trials]  # score=mean: the seed mean on dev
    for t in trials:  # each trial's evidence: an interval over its three seeds, on dev and on test
        assert t.data.metrics["dev_accuracy_ci95_low"] <= t.data.metrics["dev_accuracy_mean"]
        assert t.data.metrics["test_accuracy_ci95_high"] >= t.data.metrics["test_accuracy_mean"]

    # The choice: the first trial of the highest score, in MLflow, Optuna's study and the output alike.
    best = int(np.argmax(scores))
    assert search_run.data.metrics["l2.strength"] == values[best]
    assert search_run.data.metrics["score"] == scores[best]
    assert f"chosen on dev: l2.strength = {values[best]!r} (trial {best} of 6)" in output
    history = mlflow_client(project).get_metric_history(search_run.info.run_id, "best_score")
    assert [(p.step, p.value) for p in history] == [(3, max(scores[:3])), (6, max(scores))]  # a point per round
    storage = f"sqlite:///{project / 'optuna.db'}"
    study = optuna.load_study(study_name=search_run.data.tags["optuna_study"], storage=storage)
    assert [t.params["l2.strength"] for t in study.trials] == values
    assert [t.value for t in study.trials] == scores and study.best_trial.number == best
    artifacts = [a.path for a in mlflow_client(project).list_artifacts(search_run.info.run_id)]
    assert artifacts == ["search.png"]

    # Trained with its batch-mates, the chosen strength scores what it scores trained alone.
    config = composed(project, *SMALL)
    splits = split_source("moons", config.dataset.source, config.dataset.split)
    recipe = config.range().recipe_at(values[best])
    alone = train([Member(seed, recipe) for seed in config.seeds], config.model, config.trainer, splits,
                  boundaries=False)
    documents, _ = evaluate(alone.trained.net, splits, config.analysis.sparsity_threshold)
    assert np.mean([d["dev"]["accuracy"] for d in documents]) == scores[best]

    # Same params, same machine: the same trials and scores, bit for bit (a new study each time).
    _, again, trials_again = searched(project, capsys)
    assert again.info.run_id != search_run.info.run_id
    assert [float(t.data.params["l2.strength"]) for t in trials_again] == values
    assert [t.data.metrics["score"] for t in trials_again] == scores


def test_the_choice_is_compared_with_the_pipeline_path_trained_on_the_same_networks(project, capsys):
    """With the pipeline's l2 path run (same data, model, trainer, seeds [0, 1]
    and recipe), the search's choice is set against the path's dev choice,
    test accuracy paired by seed; once params.yaml no longer matches the
    path's outputs, no comparison."""
    run(["dvc", "repro", "path@moons"], project)
    output, search_run, trials = searched(project, capsys, "seeds=[0,1]")
    table = from_csv((project / "reports/moons/paths/l2.csv").read_text())
    chosen = select(by_strength(table))
    grid = [row["test_accuracy"] for row in table if row["strength"] == chosen["strength"]]
    best = max(trials, key=lambda t: t.data.metrics["score"])  # the first of the highest (sorted by number)
    metrics = search_run.data.metrics
    assert metrics["path_choice"] == chosen["strength"]
    assert math.isclose(metrics["test_accuracy_minus_path_mean"],
                        best.data.metrics["test_accuracy_mean"] - np.mean(grid), abs_tol=1e-12)
    assert (f"against the pipeline's l2 path (l2.csv), whose dev choice is l2.strength = {chosen['strength']:g}"
            in output)
    assert "the search's choice minus the path's, test accuracy paired over 2 seeds, " in output

    edit_yaml(project / "params.yaml", lambda d: d["paths"]["l2"].update(values=[0.1, 1]))  # the path is stale
    output, search_run, _ = searched(project, capsys, "seeds=[0,1]")
    assert "against the pipeline's" not in output and "path_choice" not in search_run.data.metrics


def test_the_lower_score_is_the_lower_end_of_the_seed_interval(project, tmp_path):
    config = composed(project, *SMALL, "search.score=lower", "search.trials=2", "search.batch=2")
    splits = split_source("moons", config.dataset.source, config.dataset.split)
    rounds = []
    trials, best = search(config, splits, open_storage(f"sqlite:///{tmp_path / 'study.db'}"), "lower", rounds.append)
    assert [len(r) for r in rounds] == [2]
    assert [t.score for t in trials] == [t.row["dev_accuracy"]["ci95_low"] for t in trials]
    assert all(t.score < t.row["dev_accuracy"]["mean"] or t.row["dev_accuracy"]["ci95_high"] == t.score
               for t in trials)
    assert best.score == max(t.score for t in trials) and math.isfinite(best.score)


@pytest.mark.parametrize(("overrides", "said"), [
    (["search.low=10", "search.high=1"], "search: low must be below high (got low 10, high 1)"),
    (["search.sweep=l1"], "search: the recipe has no l1 to sweep"),
    (["search.sweep=dropout", "regularization=[dropout]", "search.high=2"], "search: value 2 is not a valid "
                                                                              "dropout.keep_prob"),
    (["search.score=lower", "seeds=[0]"], "search.score lower needs two seeds or more"),
    (["dataset.split.dev=0"], "a search scores its trials on the dev split"),
    (["search.score=median"], "search.score"),
    (["search.tirals=3"], "search.tirals"),
    (["search.storage='sqlite:////nonexistent/study.db'"],
     "the Optuna study store sqlite:////nonexistent/study.db cannot be opened ((sqlite3.OperationalError) unable to "
     "open database file)"),
    (["search.storage=bogus://x"], "cannot be opened (Can't load plugin: sqlalchemy.dialects:bogus)"),
])
def test_a_bad_search_setting_is_one_line_naming_it(project, capsys, overrides, said):
    with pytest.raises(SystemExit) as exit:
        in_project(project, lambda: search_command.main(overrides))
    [line] = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 1 and line.startswith("error: ") and said in line, line
