"""Stage evaluate: measure every seed's network of one recipe on train, dev
and, once, test; write metrics/<dataset>/<recipe>/seed_<seed>.json and the
figures in plots/<dataset>/<recipe>/seed_<seed>/; the loss around the first
seed's network in metrics/<dataset>/<recipe>/loss_landscape.json; for a
recipe with dropout, metrics/<dataset>/<recipe>/dropout_at_test_time.json:
weight scaling, Monte Carlo dropout and the seeds' ensemble, scored.

    python -m pipeline.stages.evaluate moons l2
"""

from __future__ import annotations

import argparse
import contextlib
import json

from pipeline.config import load_params
from pipeline.core.atomic import all_or_none, atomic_dir, write_json
from pipeline.core.errors import PipelineError, cli
from pipeline.core.paths import (dropout_at_test_time_path, figures_dir, history_path, loss_landscape_path,
                                 metrics_path, model_path, training_record_path)
from pipeline.data.splits import SPLITS, load_splits
from pipeline.engine import checkpoint
from pipeline.usecases.evaluation import dropout_at_test_time, evaluate_and_draw, loss_landscape


def training_record(dataset: str, recipe: str, seeds) -> dict[int, dict]:
    path = training_record_path(dataset, recipe)
    try:
        record = {int(seed): entry for seed, entry in json.loads(path.read_text()).items()}
        if sorted(record) != sorted(seeds) or not all("steps" in entry for entry in record.values()):
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
    # the metrics directory as a set (all seeds' files, the slices, the dropout scores); the figures' directories
    # are each replaced only when all of it succeeded
    metrics = metrics_path(args.dataset, args.recipe, trained.seeds[0]).parent
    with contextlib.ExitStack() as outputs, all_or_none(metrics):
        directories = [outputs.enter_context(atomic_dir(figures_dir(args.dataset, args.recipe, seed)))
                       for seed in trained.seeds]
        documents = evaluate_and_draw(trained, splits, params.analysis.sparsity_threshold, args.recipe,
                                      [curves[seed] for seed in trained.seeds],
                                      [record[seed] for seed in trained.seeds], directories)
        for seed, document in zip(trained.seeds, documents):
            write_json(metrics_path(args.dataset, args.recipe, seed), document)
        predictions = dropout_at_test_time(trained, splits, params.analysis.dropout_at_test_time)
        if predictions is not None:
            write_json(dropout_at_test_time_path(args.dataset, args.recipe), predictions)
        slices = loss_landscape(trained, splits, params.analysis.loss_landscape)
        if slices is not None:
            write_json(loss_landscape_path(args.dataset, args.recipe), slices)
    for seed, document in zip(trained.seeds, documents):
        accuracies = ", ".join(f"{part} {document[part]['accuracy']:.3f}" for part in SPLITS if part in document)
        print(f"evaluate {args.dataset}/{args.recipe} seed {seed}: {accuracies}")


if __name__ == "__main__":
    main()
