"""Stage evaluate: measure one trained model on train, dev and, once, test;
write metrics/<dataset>/<recipe>.json and plots/<dataset>/<recipe>/decision_boundary.png,
and log both into the MLflow run that trained the model."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pipeline.atomic import write_json
from pipeline.config import AnalysisConfig, load_params
from pipeline.datasets import SPLITS, Splits, load_splits
from pipeline.errors import PipelineError, cli
from pipeline.model import MLP, as_tensors, load_network

MODELS_DIR = Path("models")


def model_path(dataset: str, recipe: str) -> Path:
    return MODELS_DIR / dataset / recipe / "model.pt"


def training_record_path(dataset: str, recipe: str) -> Path:
    """The train stage's record: MLflow run id, steps taken, key figures."""
    return MODELS_DIR / dataset / recipe / "training.json"


def metrics_path(dataset: str, recipe: str) -> Path:
    return Path("metrics") / dataset / f"{recipe}.json"


def boundary_path(dataset: str, recipe: str) -> Path:
    return Path("plots") / dataset / recipe / "decision_boundary.png"


@torch.no_grad()
def measure(net: MLP, splits: Splits) -> dict[str, dict[str, float]]:
    """Accuracy (a fraction) and mean cross-entropy on every non-empty split."""
    net.eval()
    metrics = {}
    for part in SPLITS:
        if len(splits.y[part]) == 0:
            continue
        x, y = as_tensors(splits.X[part], splits.y[part])
        logits = net(x)
        metrics[part] = {
            "accuracy": (net.predict(logits) == y).double().mean().item(),
            "loss": net.loss(logits, y).item(),
        }
    return metrics


@torch.no_grad()
def per_class(net: MLP, splits: Splits) -> dict[str, dict[str, float]]:
    """Precision, recall and support of each class on the test split."""
    x, y = as_tensors(splits.X["test"], splits.y["test"])
    predicted = net.eval().predict(net(x))
    k = splits.n_classes
    confusion = torch.bincount(y * k + predicted, minlength=k * k).reshape(k, k)  # rows: true, columns: predicted
    result = {}
    for i, label in enumerate(splits.classes):
        hits, support, claimed = confusion[i, i].item(), confusion[i].sum().item(), confusion[:, i].sum().item()
        result[f"{label:g}"] = {
            "precision": hits / claimed if claimed else 0.0,
            "recall": hits / support if support else 0.0,
            "support": support,
        }
    return result


def metric_name(part: str, name: str) -> str:
    # train_*/dev_* are the learning curves; the evaluated model's are final_*
    return f"test_{name}" if part == "test" else f"final_{part}_{name}"


def log_to_run(client, run_id: str, measured: dict, weights: dict, classes: dict, artifacts: list[Path]) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = {metric_name(part, name): value for part, m in measured.items() for name, value in m.items()} | weights
    for label, figures in classes.items():
        values[f"test_precision_class_{label}"] = figures["precision"]
        values[f"test_recall_class_{label}"] = figures["recall"]
    client.log_batch(run_id, metrics=[Metric(name, value, now, 0) for name, value in values.items()])
    for path in artifacts:
        client.log_artifact(run_id, str(path), "evaluation")


def evaluate_and_log(
    client, run_id: str, net: MLP, splits: Splits, recipe: str, plot_path: Path, analysis: AnalysisConfig,
    training: dict,
) -> dict:
    """Measure, read the weights, draw, and log to the run; a failure marks the run FAILED.

    Returns the metrics document: accuracy and loss per split, precision and
    recall per class on test, the weight figures, and the training record's
    steps and key figures."""
    from pipeline.analysis import weight_figures
    from pipeline.plots import decision_boundary

    try:
        measured = measure(net, splits)
        weights = weight_figures(net, analysis.sparsity_threshold)
        classes = per_class(net, splits)
        if splits.n_features == 2:
            decision_boundary(plot_path, net, splits, recipe, measured)
        log_to_run(client, run_id, measured, weights, classes, [plot_path] if plot_path.exists() else [])
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return {**measured, "per_class": classes, "weights": weights, "training": training}


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--recipe", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    params.run(args.dataset, args.recipe)  # validates the names too

    from pipeline.tracking import connect

    splits = load_splits(args.dataset)
    net = load_network(model_path(args.dataset, args.recipe))
    record = training_record_path(args.dataset, args.recipe)
    try:
        training = json.loads(record.read_text())
        run_id = training.pop("run_id")
    except (OSError, ValueError, KeyError):
        raise PipelineError(f"{record} is missing or corrupt: rerun training") from None
    client = connect()
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        raise PipelineError(
            f"MLflow run {run_id} of {args.dataset}/{args.recipe} is not in the tracking store; "
            f"retrain it: dvc repro --force train@{args.dataset}-{args.recipe}"
        ) from None
    plot = boundary_path(args.dataset, args.recipe)
    metrics = evaluate_and_log(client, run_id, net, splits, args.recipe, plot, params.analysis, training)
    write_json(metrics_path(args.dataset, args.recipe), metrics)
    accuracies = ", ".join(f"{part} {metrics[part]['accuracy']:.3f}" for part in SPLITS if part in metrics)
    print(f"evaluate {args.dataset}/{args.recipe}: {accuracies}")


if __name__ == "__main__":
    main()
