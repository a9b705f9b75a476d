"""Stage evaluate: measure every seed's network of one recipe on train, dev
and, once, test; write metrics/<dataset>/<recipe>/seed_<seed>.json and the
figures in plots/<dataset>/<recipe>/seed_<seed>/, and log both into each
seed's MLflow run, with the evaluated network as its MLflow model.

    python -m pipeline.stages.evaluate moons l2
"""

from __future__ import annotations

import argparse
import contextlib
import json

import torch

from pipeline.analysis import figures
from pipeline.analysis.evaluation import evaluate
from pipeline.config import load_params
from pipeline.core.atomic import atomic_dir, write_json
from pipeline.core.errors import PipelineError, cli
from pipeline.core.paths import figures_dir, history_path, metrics_path, model_path, training_record_path
from pipeline.data.splits import SPLITS, load_splits
from pipeline.engine import checkpoint
from pipeline.engine.network import Probabilities
from pipeline.tracking.runs import kept_step, log_evaluation, log_figures, training_input
from pipeline.tracking.store import PARENT, connect, failing


def training_record(dataset: str, recipe: str, seeds) -> dict[int, dict]:
    path = training_record_path(dataset, recipe)
    try:
        record = {int(seed): entry for seed, entry in json.loads(path.read_text()).items()}
        if sorted(record) != sorted(seeds) or not all("run_id" in entry for entry in record.values()):
            raise ValueError
    except (OSError, ValueError, AttributeError):
        raise PipelineError(f"{path} is missing or corrupt: rerun training") from None
    return record


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    parser.add_argument("recipe", help="a key of suite in params.yaml")
    args = parser.parse_args(argv)
    params = load_params()
    params.dataset(args.dataset), params.recipe(args.recipe)  # known names
    splits = load_splits(args.dataset)
    trained = checkpoint.load(model_path(args.dataset, args.recipe))
    record = training_record(args.dataset, args.recipe, trained.seeds)
    curves = checkpoint.load_curves(history_path(args.dataset, args.recipe))
    client = connect()
    run_ids = [record[seed].pop("run_id") for seed in trained.seeds]
    from mlflow.exceptions import MlflowException

    parents = set()  # the pipeline run's parent
    for seed, run_id in zip(trained.seeds, run_ids):
        try:
            parents |= {client.get_run(run_id).data.tags.get(PARENT)} - {None}
        except MlflowException:
            raise PipelineError(
                f"MLflow run {run_id} of {args.dataset}/{args.recipe} (seed {seed}) is not in the tracking store; "
                f"retrain it: dvc repro --force train@{args.dataset}-{args.recipe}") from None

    with failing(client, run_ids, list(parents)), contextlib.ExitStack() as outputs:
        documents, y_pred = evaluate(trained.net, splits, params.analysis.sparsity_threshold)
        grid = figures.plane(splits) if splits.n_features == 2 else None
        proba = figures.probabilities(trained.net, *grid) if grid is not None else None
        directories = [outputs.enter_context(atomic_dir(figures_dir(args.dataset, args.recipe, seed)))
                       for seed in trained.seeds]
        jobs = [(directories[k], args.recipe, splits, documents[k], curves[seed],
                 figures.weight_matrices(trained.net, k), y_pred[k], proba[k] if proba is not None else None, grid,
                 record[seed].get("best_step")) for k, seed in enumerate(trained.seeds)]
        example = torch.as_tensor(splits.X["train"][:5], dtype=trained.net.dtype)
        dataset = training_input(args.dataset, splits)
        with figures.drawing(jobs):  # on the other cores, while the models go to MLflow
            for k, (seed, document, run_id) in enumerate(zip(trained.seeds, documents, run_ids)):
                document["training"] = record[seed]
                log_evaluation(client, run_id, document, Probabilities(trained.single(k)), example,
                               f"{args.recipe}-seed-{seed}", dataset)
        for seed, document, run_id, directory in zip(trained.seeds, documents, run_ids, directories):
            log_figures(client, run_id, directory, kept_step(document["training"]))
            write_json(metrics_path(args.dataset, args.recipe, seed), document)
    for seed, document in zip(trained.seeds, documents):
        accuracies = ", ".join(f"{part} {document[part]['accuracy']:.3f}" for part in SPLITS if part in document)
        print(f"evaluate {args.dataset}/{args.recipe} seed {seed}: {accuracies}")


if __name__ == "__main__":
    main()
