"""Training and evaluation as MLflow runs, one run per network: what the train
and evaluate stages and the ad-hoc run share.

Metric names: the learning curves, logged at every evaluation during
training, are `curve/<split>_<loss|accuracy>` (one chart section, train and
dev side by side); the evaluated network's values, the network that was kept
(for early stopping, the best step's), are plain `<split>_<loss|accuracy>`,
logged once, at the step it was kept. Single figures (initial_cost,
best_step, the weight statistics) are logged once, at step 0 unless they
belong to a step.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from PIL import Image

from pipeline.analysis.boundary_snapshots import BoundarySnapshots, boundary_image, snapshot_steps, square_plane
from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.fit import FitResult, Member, fit
from pipeline.engine.network import Probabilities
from pipeline.tracking.store import (NOTE, experiment_id, failing, flatten, log_metrics, log_model, pipeline_parent,
                                     start_runs)

PACKAGE = Path(__file__).resolve().parents[1]
SNAPSHOTS = 5  # decision-boundary images per network during training (2-D data): 0, 250, ..., 1000 by default


def describe_recipe(name: str, regularization: dict) -> str:
    """`l2 (l2: strength=1, mode=penalty)` in words a run's description can hold."""
    if not regularization:
        return f"{name} (no regularization)"
    parts = [f"{technique}: " + ", ".join(f"{k}={v}" for k, v in settings.items())
             for technique, settings in regularization.items()]
    return f"{name} ({'; '.join(parts)})"


def describe_dataset(name: str, splits: Splits) -> str:
    sizes = ", ".join(f"{part} {len(y)}" for part, y in splits.y.items() if len(y))
    return (f"Dataset {name}: {splits.n_features} features, {len(splits.classes)} classes; {sizes} examples. "
            f"Each pipeline run (`dvc repro`) is a parent run holding the report (its description), with one "
            f"nested run per recipe and seed and one per regularization path. Group by the `recipe` tag to "
            f"compare recipes over seeds; the chart view shows every run's decision boundary side by side.")


def train_tracked(client, members: list[Member], model: ModelConfig, trainer: TrainerConfig, splits: Splits,
                  experiment: str, names: list[str], tags: list[dict], configs: list[dict],
                  parent: str | None = None, progress: bool = False) -> tuple[Trained, FitResult, list[str]]:
    """Fit the members' networks at once, each its own MLflow run (nested
    under parent) holding its params (the flattened config), description,
    learning curves, the techniques' figures, config.yaml and, for points in
    the plane, the decision boundary as it formed; a failure marks every run
    FAILED. progress: see fit()."""
    described = [run_tags | {NOTE: f"{describe_recipe(c['recipe'], c['regularization'])}, seed {c['seed']}."}
                 for run_tags, c in zip(tags, configs)]
    run_ids = start_runs(client, experiment, names, described, [flatten(c) for c in configs], parent=parent)
    with failing(client, run_ids, [parent] if parent else []):
        snapshots = None
        if splits.n_features == 2:
            steps = snapshot_steps(trainer.max_steps, trainer.eval_every, SNAPSHOTS)
            snapshots = BoundarySnapshots(square_plane(splits), steps)
        result = fit(members, model, trainer, splits, callbacks=[snapshots] if snapshots else [],
                     progress=progress)
        trained = Trained(result.net, result.batch, model, [m.recipe for m in members])
        for k, run_id in enumerate(run_ids):
            points = [(f"curve/{name}", value, point["step"]) for point in result.curves[k]
                      for name, value in point.items() if name != "step"]
            points += [(name, value, 0) for name, value in result.figures[k].items()]
            log_metrics(client, run_id, points)
            client.log_text(run_id, yaml.safe_dump(configs[k], sort_keys=False), "config.yaml")
            for step, probabilities in sorted((snapshots.probabilities if snapshots else {}).items()):
                if step <= result.steps[k]:  # a stopped network stays as it was
                    image = boundary_image(probabilities[k], snapshots.grid, splits)
                    client.log_image(run_id, image, key="boundary_during_training", step=step)
    return trained, result, run_ids


def kept_step(training: dict) -> int:
    """The step of the network that was evaluated: early stopping keeps its best step's."""
    return int(training.get("best_step", training["steps"]))


def log_evaluation(client, run_id: str, document: dict, network: Probabilities, example: torch.Tensor,
                   model_name: str, dataset=None) -> None:
    """The evaluated network into the run that trained it: the model itself,
    then its metrics at the step it was kept, into the run and onto the model,
    and a sentence on what was evaluated."""
    step = kept_step(document["training"])
    # the model first: MLflow reads every metric's history to copy a run's metrics onto a model it logs
    model_id = log_model(run_id, network, example, PACKAGE, model_name, step, dataset)
    points = [(f"{part}_{name}", value, step) for part in ("train", "dev", "test") if part in document
              for name, value in document[part].items()]
    points += [(name, value, step) for name, value in document["weights"].items()]
    for label, figures_of_class in document["per_class"].items():
        points += [(f"test_precision_class_{label}", figures_of_class["precision"], step),
                   (f"test_recall_class_{label}", figures_of_class["recall"], step)]
    log_metrics(client, run_id, points, model_id)
    accuracies = ", ".join(f"{part} {document[part]['accuracy']:.1%}" for part in ("train", "dev", "test")
                           if part in document)
    kept = (f"the network of step {step} (best on dev; training stopped at step {document['training']['stopped_step']})"
            if "best_step" in document["training"] else f"the network after {step} steps")
    description = client.get_run(run_id).data.tags.get(NOTE, "")
    client.set_tag(run_id, NOTE, f"{description}\n\nEvaluated {kept}: {accuracies}. The curve/ metrics are the "
                                 f"learning curves; train_/dev_/test_ metrics are this evaluated network's.")


def log_figures(client, run_id: str, figures: Path, step: int) -> None:
    """A network's figures as images keyed by name, which MLflow's chart view
    compares across runs as image cards."""
    for figure in sorted(figures.glob("*.png")):
        with Image.open(figure) as image:
            client.log_image(run_id, image.convert("RGB"), key=figure.stem, step=step)


def log_path(client, parent: str, experiment: str, summary: list[dict], swept: str, tags: dict) -> None:
    """One child run per strength under the path's parent run: param `strength`
    (and the swept key), metrics the mean and 95% interval over seeds of
    every column, so MLflow's charts can plot the path."""
    names = [f"{swept}={row['strength']:g}" for row in summary]
    params = [{"strength": str(row["strength"]), swept: str(row["strength"])} for row in summary]
    described = [tags | {NOTE: f"{swept} = {row['strength']:g}: means and 95% intervals over seeds."}
                 for row in summary]
    children = start_runs(client, experiment, names, described, params, parent=parent)
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


def training_input(name: str, splits: Splits):
    """The training split as an MLflow dataset (name, digest, schema), for log_model's run input."""
    import mlflow.data

    return mlflow.data.from_numpy(splits.X["train"], targets=splits.y["train"], name=name)


def parent_of(client, dataset: str, splits: Splits, tags: dict[str, str]) -> str:
    """The pipeline run's parent run in the dataset's experiment, the experiment
    described. tags are the pipeline-wide ones (no recipe tag: MLflow's group
    by recipe would count the parent as one more run of that recipe)."""
    experiment_id(client, dataset, describe_dataset(dataset, splits))
    return pipeline_parent(client, dataset, tags["pipeline_run"], tags,
                           f"Pipeline run {tags['pipeline_run']} of {dataset}; the report arrives when its stage runs.")
