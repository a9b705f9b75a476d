"""Training and evaluation as MLflow runs, one run per network: what the train
and evaluate stages and the ad-hoc run share."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.fit import FitResult, Member, fit
from pipeline.engine.network import Probabilities
from pipeline.tracking.store import connect, failing, flatten, log_metrics, log_model, start_runs

PACKAGE = Path(__file__).resolve().parents[1]


def train_tracked(members: list[Member], model: ModelConfig, trainer: TrainerConfig, splits: Splits,
                  experiment: str, names: list[str], tags: list[dict], configs: list[dict], progress: bool = False
                  ) -> tuple[Trained, FitResult, list[str]]:
    """Fit the members' networks at once, each its own MLflow run holding its
    params (the flattened config), learning curves, figures, config.yaml and
    model; a failure marks every run FAILED. progress: see fit()."""
    client = connect()
    run_ids = start_runs(client, experiment, names, tags, [flatten(c) for c in configs])
    with failing(client, run_ids):
        result = fit(members, model, trainer, splits, progress=progress)
        trained = Trained(result.net, result.batch, model, [m.recipe for m in members])
        example = torch.as_tensor(splits.X["train"][:5], dtype=result.batch.dtype)
        for k, run_id in enumerate(run_ids):
            # the model before the metrics: MLflow copies a run's metrics so far onto a model it logs
            log_model(run_id, Probabilities(trained.single(k)), example, PACKAGE)
            points = [(name, value, point["step"]) for point in result.curves[k]
                      for name, value in point.items() if name != "step"]
            points += [(name, value, result.steps[k]) for name, value in result.figures[k].items()]
            log_metrics(client, run_id, points)
            client.log_text(run_id, yaml.safe_dump(configs[k], sort_keys=False), "config.yaml")
    return trained, result, run_ids


def log_evaluation(client, run_id: str, document: dict, figures: Path) -> None:
    """The evaluated network's metrics (final_*, test_*, per-class, weight
    figures) and its figures, into the run that trained it."""
    points = [(f"test_{name}" if part == "test" else f"final_{part}_{name}", value, 0)
              for part in ("train", "dev", "test") if part in document for name, value in document[part].items()]
    points += [(name, value, 0) for name, value in document["weights"].items()]
    for label, figures_of_class in document["per_class"].items():
        points += [(f"test_precision_class_{label}", figures_of_class["precision"], 0),
                   (f"test_recall_class_{label}", figures_of_class["recall"], 0)]
    log_metrics(client, run_id, points)
    client.log_artifacts(run_id, str(figures), "evaluation")


def log_path(client, parent: str, experiment: str, summary: list[dict], swept: str, tags: dict) -> None:
    """One child run per strength under the path's parent run: param `strength`
    (and the swept key), metrics the mean and 95% interval over seeds of
    every column, so MLflow's charts can plot the path."""
    from pipeline.tracking.store import start_runs

    names = [f"{swept}={row['strength']:g}" for row in summary]
    params = [{"strength": str(row["strength"]), swept: str(row["strength"])} for row in summary]
    children = start_runs(client, experiment, names, [tags] * len(summary), params, parent=parent)
    with failing(client, children):
        for run_id, row in zip(children, summary):
            points = []
            for column, estimate in row.items():
                if column == "strength" or estimate is None:
                    continue
                points.append((column, estimate["mean"], 0))
                if estimate["ci95_low"] is not None:
                    points += [(f"{column}_ci95_low", estimate["ci95_low"], 0),
                               (f"{column}_ci95_high", estimate["ci95_high"], 0)]
            log_metrics(client, run_id, points)
