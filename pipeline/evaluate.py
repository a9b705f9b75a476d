"""Stage evaluate: measure one trained model on train, dev and, once, test;
write metrics/<dataset>/<recipe>/seed_<seed>.json and the figures in
plots/<dataset>/<recipe>/seed_<seed>/ (decision boundary for 2-D data;
misclassified test images and first-layer weights for images; learning
curves, a confusion matrix and a weight histogram for all), and log them into
the MLflow run that trained the model."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.atomic import atomic_dir, write_json
from pipeline.config import AnalysisConfig, load_params
from pipeline.datasets import SPLITS, Splits, load_splits
from pipeline.errors import PipelineError, cli
from pipeline.model import MLP, as_tensors, load_network
from pipeline.paths import figures_dir, metrics_path, model_path, training_record_path


@torch.no_grad()
def measure(net: MLP, splits: Splits) -> dict[str, dict[str, float]]:
    """Accuracy (a fraction) and mean cross-entropy on every non-empty split."""
    net.eval()
    metrics = {}
    for part in SPLITS:
        if len(splits.y[part]) == 0:
            continue
        x, y = as_tensors(splits.X[part], splits.y[part], net.dtype)
        logits = net(x)
        metrics[part] = {
            "accuracy": (net.predict(logits) == y).double().mean().item(),
            "loss": net.loss(logits, y).item(),
        }
    return metrics


@torch.no_grad()
def predict(net: MLP, X: np.ndarray) -> np.ndarray:
    """Class indices the network predicts for the rows of X."""
    return net.eval().predict(net(torch.as_tensor(X, dtype=net.dtype))).numpy()


def per_class(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> dict[str, dict[str, float]]:
    """Precision, recall and support of each class."""
    k = len(classes)
    confusion = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)  # rows: true, columns: predicted
    result = {}
    for i, label in enumerate(classes):
        hits, support, claimed = int(confusion[i, i]), int(confusion[i].sum()), int(confusion[:, i].sum())
        result[f"{label:g}"] = {
            "precision": hits / claimed if claimed else 0.0,
            "recall": hits / support if support else 0.0,
            "support": support,
        }
    return result


CURVES = [f"{part}_{quantity}" for part in ("train", "dev") for quantity in ("loss", "accuracy")]


def draw_figures(directory: Path, net: MLP, splits: Splits, name: str, measured: dict, y_pred: np.ndarray,
                 history: dict[str, list[tuple[int, float]]]) -> None:
    """The figures that fit the data: learning curves, confusion matrix and
    weight histogram for all; a decision boundary for points in the plane;
    misclassified images and first-layer weights for images."""
    from pipeline import plots

    X_test, y_test = splits.X["test"], splits.y["test"]
    plots.learning_curves(directory / "learning_curves.png", history, name)
    plots.confusion_matrix(directory / "confusion_matrix.png", y_test, y_pred, splits.classes, name)
    plots.weight_histogram(directory / "weight_histogram.png", net, name)
    if splits.n_features == 2:
        plots.decision_boundary(directory / "decision_boundary.png", net, splits, name, measured)
    if splits.image_shape is not None:
        shape = splits.image_shape
        plots.misclassified(directory / "misclassified.png", X_test, y_test, y_pred, splits.classes, shape, name)
        plots.first_layer_weights(directory / "first_layer_weights.png", net, shape, name)


def metric_name(part: str, name: str) -> str:
    # train_*/dev_* are the learning curves; the evaluated model's are final_*
    return f"test_{name}" if part == "test" else f"final_{part}_{name}"


def log_to_run(client, run_id: str, measured: dict, weights: dict, classes: dict, figures: Path) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = {metric_name(part, name): value for part, m in measured.items() for name, value in m.items()} | weights
    for label, figures_of_class in classes.items():
        values[f"test_precision_class_{label}"] = figures_of_class["precision"]
        values[f"test_recall_class_{label}"] = figures_of_class["recall"]
    client.log_batch(run_id, metrics=[Metric(name, value, now, 0) for name, value in values.items()])
    client.log_artifacts(run_id, str(figures), "evaluation")


def evaluate_and_log(
    client, run_id: str, net: MLP, splits: Splits, name: str, figures: Path, analysis: AnalysisConfig,
    training: dict,
) -> dict:
    """Measure, read the weights, draw into the directory `figures`, and log to
    the run; a failure marks the run FAILED.

    Returns the metrics document: accuracy and loss per split, precision and
    recall per class on test, the weight figures, and the training record's
    steps and key figures."""
    from pipeline.analysis import weight_figures

    try:
        measured = measure(net, splits)
        weights = weight_figures(net, analysis.sparsity_threshold)
        y_pred = predict(net, splits.X["test"])
        classes = per_class(splits.y["test"], y_pred, splits.classes)
        # the curves train logged to this run, read back from MLflow
        history = {key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)] for key in CURVES}
        draw_figures(figures, net, splits, name, measured, y_pred, history)
        log_to_run(client, run_id, measured, weights, classes, figures)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return {**measured, "per_class": classes, "weights": weights, "training": training}


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--seed", required=True, type=int)
    args = parser.parse_args(argv)
    params = load_params()
    params.run(args.dataset, args.recipe, args.seed)  # validates the names too

    from pipeline.tracking import connect

    splits = load_splits(args.dataset)
    net = load_network(model_path(args.dataset, args.recipe, args.seed))
    record = training_record_path(args.dataset, args.recipe, args.seed)
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
            f"MLflow run {run_id} of {args.dataset}/{args.recipe} (seed {args.seed}) is not in the tracking "
            f"store; retrain it: dvc repro --force train@{args.dataset}-{args.recipe}-{args.seed}"
        ) from None
    with atomic_dir(figures_dir(args.dataset, args.recipe, args.seed)) as figures:
        metrics = evaluate_and_log(client, run_id, net, splits, args.recipe, figures, params.analysis, training)
        write_json(metrics_path(args.dataset, args.recipe, args.seed), metrics)
    accuracies = ", ".join(f"{part} {metrics[part]['accuracy']:.3f}" for part in SPLITS if part in metrics)
    print(f"evaluate {args.dataset}/{args.recipe} seed {args.seed}: {accuracies}")


if __name__ == "__main__":
    main()
