"""What each kind of MLflow run holds, written from finished results: a
network's run (one seed), a recipe's run (its evidence over seeds), a path's
runs and a pipeline run's parent (the comparison). Nothing here reads a run back.

One metric name, one meaning: in a seed's run `test_accuracy` is that
network's; a value over seeds is named for what it is (`test_accuracy_mean`,
`test_accuracy_ci95_low`, `test_accuracy_ci95_high`). The learning curves are
`curve/<split>_<loss|accuracy>` at every evaluation, and the weight
statistics `curve/<statistic>` (a seed's) or `curve/<statistic>_mean` (with
`_ci95_low`, `_ci95_high`: a recipe's, over seeds) at the steps the weights
were recorded (0, 1, 3, 10, ...); the evaluated network's
values (for early stopping, its best step's) are logged at the step it was kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from pipeline.analysis.regularization_path import over_training, step_column
from pipeline.analysis.weights import STATISTICS
from pipeline.data.splits import SPLITS, Splits
from pipeline.tracking.store import NOTE, log_metrics, log_model

PACKAGE = Path(__file__).resolve().parents[1]



def describe_recipe(name: str, regularization: dict) -> str:
    """`l2 (l2: strength=1, mode=penalty)` in words a run's description can hold."""
    if not regularization:
        return f"{name} (no regularization)"
    parts = [f"{technique}: " + ", ".join(f"{k}={v}" for k, v in settings.items())
             for technique, settings in regularization.items()]
    return f"{name} ({'; '.join(parts)})"


def seed_run_name(recipe: str, seed: int) -> str:
    return f"{recipe} · seed {seed}"


@dataclass
class NetworkRecord:
    """One trained and evaluated network, as its run holds it."""

    recipe: str
    seed: int
    config: dict  # what made it (seed, dataset, model, trainer, recipe, regularization): config.yaml
    curve: list[dict[str, float]]  # its evaluations during training, step 0 first
    document: dict  # its metrics: train/dev/test, per_class, weights, and training (steps, the techniques' figures)
    figures: Path  # a directory of its figures (PNG), logged as images keyed by file name
    snapshots: dict[int, Path | np.ndarray]  # step -> the decision boundary then (points in the plane)
    weight_statistics: dict[int, dict[str, float]]  # step -> its weights' statistics then
    network: torch.nn.Module  # class probabilities out: the run's MLflow model


def kept_step(training: dict) -> int:
    """The step of the network that was evaluated: early stopping keeps its best step's."""
    return int(training.get("best_step", training["steps"]))


def log_network(client, run_id: str, record: NetworkRecord, example: torch.Tensor, dataset=None) -> None:
    """A network's run: learning curves, the techniques' figures, the model
    (its metrics travel with it), the evaluated metrics at the step it was
    kept, the boundary as it formed, its figures, config.yaml and a description."""
    document, training = record.document, record.document["training"]
    step = kept_step(training)
    points = [(f"curve/{name}", value, point["step"]) for point in record.curve
              for name, value in point.items() if name != "step"]
    points += [(name, value, 0) for name, value in training.items() if name != "steps"]
    points += [(f"curve/{name}", figures[name], weight_step)  # a stopped network: up to its stop
               for weight_step, figures in record.weight_statistics.items() if weight_step <= training["steps"]
               for name in STATISTICS]
    log_metrics(client, run_id, points)
    client.log_text(run_id, yaml.safe_dump(record.config, sort_keys=False), "config.yaml")
    # the model first: MLflow reads every metric's history to copy a run's metrics onto a model it logs
    model_id = log_model(run_id, record.network, example, PACKAGE, f"{record.recipe}-seed-{record.seed}", step, dataset)
    points = [(f"{part}_{name}", value, step) for part in SPLITS if part in document
              for name, value in document[part].items()]
    points += [(name, value, step) for name, value in document["weights"].items()]
    for label, figures_of_class in document["per_class"].items():
        points += [(f"test_precision_class_{label}", figures_of_class["precision"], step),
                   (f"test_recall_class_{label}", figures_of_class["recall"], step)]
    log_metrics(client, run_id, points, model_id)
    for snapshot_step, image in record.snapshots.items():
        client.log_image(run_id, as_image(image), key="boundary_during_training", step=snapshot_step)
    # at step 0: MLflow's chart view shows an image card's first step
    for figure in sorted(record.figures.glob("*.png")):
        client.log_image(run_id, as_image(figure), key=figure.stem, step=0)
    accuracies = ", ".join(f"{part} {document[part]['accuracy']:.1%}" for part in SPLITS if part in document)
    kept = (f"the network of step {step} (best on dev; training stopped at step {training['stopped_step']})"
            if "best_step" in training else f"the network after {step} steps")
    client.set_tag(run_id, NOTE, f"{describe_recipe(record.recipe, record.config['regularization'])}, seed "
                                 f"{record.seed}.\n\nEvaluated {kept}: {accuracies}. The curve/ metrics are the "
                                 f"learning curves; train_/dev_/test_ metrics are this evaluated network's.")


def as_image(image: Path | np.ndarray) -> Image.Image:
    if isinstance(image, np.ndarray):
        return Image.fromarray(image)
    with Image.open(image) as opened:
        return opened.convert("RGB")


def interval_points(name: str, estimate: dict, step: int = 0) -> list[tuple[str, float, int]]:
    """An interval {mean, ci95_low, ci95_high} as the metrics <name>_mean,
    <name>_ci95_low, <name>_ci95_high at step (the ends only where it has them)."""
    return [(f"{name}_{bound}", estimate[bound], step) for bound in ("mean", "ci95_low", "ci95_high")
            if estimate.get(bound) is not None]


def estimates(row: dict) -> list[tuple[str, float, int]]:
    """A row of estimates over seeds as metrics: an interval as interval_points;
    a number as itself; anything else (words, counts of seeds) left out."""
    points = []
    for name, value in row.items():
        if isinstance(value, dict) and "mean" in value:
            points += interval_points(name, value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and name not in ("seeds", "strength"):
            points.append((name, value, 0))
    return points


def log_recipe(client, run_id: str, row: dict, during_training: dict[str, list[dict]], image: Path | None = None,
               dropout: dict | None = None) -> None:
    """A recipe's run: its evidence over seeds (intervals, the paired
    difference to the baseline, raw and Holm-adjusted p-values, the verdict
    as `separated` 1 or 0 and the tag `verdict`), its weight statistics'
    intervals over training (per statistic, a point per recorded step), its
    first seed's decision boundary at step 0, for the chart view; and with
    dropout, its three ways to predict."""
    points = estimates(row)
    points += [point for name, curve in during_training.items() for estimate in curve
               for point in interval_points(f"curve/{name}", estimate, estimate["step"])]
    points += dropout_points(dropout) if dropout else []
    if "verdict" in row:
        points.append(("separated", float(row["verdict"] != "not separated"), 0))
        client.set_tag(run_id, "verdict", row["verdict"])
    log_metrics(client, run_id, points)
    if image is not None:
        client.log_image(run_id, as_image(image), key="decision_boundary", step=0)


def dropout_points(summary: dict) -> list[tuple[str, float, int]]:
    """A dropout recipe's predictions (dropout_at_test_time.summarize()'s row)
    as dropout/<prediction>_<metric> metrics: weight scaling's and Monte
    Carlo's intervals, Monte Carlo's at step T for each T scored (a history:
    the chart of its convergence), the paired difference with its adjusted
    p-value, and the seeds' ensemble."""
    points = []
    for metric, estimate in summary["weight_scaling"].items():
        points += interval_points(f"dropout/weight_scaling_{metric}", estimate)
    by_samples = summary["monte_carlo_by_samples"]
    for metric in summary["monte_carlo"]:
        for count, estimate in zip(by_samples["samples"], by_samples[metric]):
            points += interval_points(f"dropout/monte_carlo_{metric}", estimate, count)
    for metric, difference in summary["monte_carlo_minus_weight_scaling"].items():
        points += interval_points(f"dropout/monte_carlo_minus_weight_scaling_{metric}", difference)
        points.append((f"dropout/monte_carlo_minus_weight_scaling_{metric}_p_value_holm", difference["p_value_holm"],
                       0))
    for metric, estimate in summary["seed_ensemble"].items():
        points += interval_points(f"dropout/seed_ensemble_{metric}", {"mean": estimate["value"]} | estimate)
    return points


def log_path_strength(client, run_id: str, row: dict, statistic: str, boundary: np.ndarray | None = None) -> None:
    """One strength of a path: every column's mean and 95% interval over seeds;
    the weight statistic's at each recorded step as curve/<statistic>_mean, ...
    histories, as a recipe run's; for points in the plane, the first seed's
    decision boundary at that strength as an image card, so the chart view
    shows the strengths' boundaries side by side."""
    during = over_training(row, statistic)
    points = estimates({key: value for key, value in row.items() if not key.startswith(step_column(statistic, ""))})
    points += [point for step, estimate in during.items()
               for point in interval_points(f"curve/{statistic}", estimate, step)]
    log_metrics(client, run_id, points)
    if boundary is not None:
        client.log_image(run_id, as_image(boundary), key="decision_boundary", step=0)


def training_input(name: str, splits: Splits):
    """The training split as an MLflow dataset (name, digest, schema), for log_model's run input."""
    import mlflow.data

    return mlflow.data.from_numpy(splits.X["train"], targets=splits.y["train"], name=name)


def describe_dataset(name: str, splits: Splits) -> str:
    sizes = ", ".join(f"{part} {len(y)}" for part, y in splits.y.items() if len(y))
    return (f"Dataset {name}: {splits.n_features} features, {len(splits.classes)} classes; {sizes} examples. "
            f"Each pipeline run (`dvc repro`) is a parent run holding the report (its description), with one "
            f"nested run per recipe (its evidence over seeds) holding one run per seed (its network), and one "
            f"per regularization path.")
