"""Stage path: the regularization paths of one dataset. Each path's recipe is
trained at every value of its swept strength and every seed, all as one
batch, then evaluated on train, dev and test.

    python -m pipeline.stages.path moons

Writes reports/<dataset>/paths/: <path>.csv (a row per strength and seed:
the accuracies, losses and the weight statistic the technique acts on, at
the end and at steps 0, 1, 3, 10, ... of training), <path>.png (each against
strength, with seed intervals and the strengths chosen on dev marked: the
best, and the most regularized within one standard error of it; the
statistic a line per recorded step) and, for points in the plane,
<path>_boundaries.png (the first seed's decision boundary at every
strength, the one chosen on dev named); and
models/<dataset>/paths_by_strength/<path>.npz (per strength, the first
seed's weights and, in the plane, its boundary image: the report page's
strength slider).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.analysis import figures
from pipeline.analysis.evaluation import evaluate, predict
from pipeline.analysis.regularization_path import by_strength, one_standard_error, rows, select, to_csv
from pipeline.analysis.strength_views import save_views, strength_views
from pipeline.analysis.weights import statistics_during_training
from pipeline.config import PipelineConfig, load_params
from pipeline.core.atomic import atomic_dir, write_text
from pipeline.core.errors import cli
from pipeline.core.paths import paths_dir, strength_views_dir
from pipeline.data.splits import Splits, load_splits
from pipeline.engine.checkpoint import Trained
from pipeline.engine.fit import Member
from pipeline.techniques import TECHNIQUES
from pipeline.usecases.training import train


def run_path(name: str, params: PipelineConfig, splits: Splits, directory: Path, views: Path, dataset: str) -> str:
    """Train, evaluate and record one path into directory (and its slider's views
    into views); a line saying what dev chose."""
    path = params.path(name)
    technique = TECHNIQUES[path.sweep]
    swept = f"{path.sweep}.{technique.sweeps}"
    members = [Member(seed, path.recipe_at(value), label=f"{swept} {value:g}, seed {seed}")
               for value in path.values for seed in params.seeds]
    training = train(members, params.model, params.trainer, splits, progress="long", boundaries=False)
    trained, threshold = training.trained, params.analysis.sparsity_threshold
    documents, _ = evaluate(trained.net, splits, threshold)
    table = rows(path.values, params.seeds, documents, technique.statistic,
                 statistics_during_training(training.weights, threshold))
    summary = by_strength(table)
    chosen, simpler = select(summary), one_standard_error(table, summary, technique.stronger)
    selected = chosen["strength"] if chosen else None
    one_se = simpler["strength"] if simpler else None
    write_text(directory / f"{name}.csv", to_csv(table))
    figures.regularization_path(directory / f"{name}.png", summary, f"{dataset}: {name} path", swept,
                                technique.statistic, selected, one_se)
    firsts = first_seeds(path.values, params.seeds, swept, selected)
    save_views(views / f"{name}.npz", strength_views(trained, path.values, list(firsts.values()), splits))
    if splits.n_features == 2:
        draw_boundaries(directory / f"{name}_boundaries.png", trained, documents, firsts, splits,
                        f"{dataset}: {name} path, the decision boundary at each strength (seed {params.seeds[0]})")
    shown = (f"chosen on dev: {swept} = {selected:g} (one-standard-error choice {one_se:g})" if chosen
             else "no dev set, nothing chosen")
    return f"path {dataset}/{name}: {len(path.values)} values x {len(params.seeds)} seeds; {shown}"


def first_seeds(values: list[float], seeds: list[int], swept: str, selected: float | None) -> dict[str, int]:
    """Per strength, a panel label and the index of its first seed's network
    (members run strength by strength, seed by seed, as the csv's rows)."""
    return {f"{swept} = {value:g}" + (" (chosen on dev)" if value == selected else ""): i * len(seeds)
            for i, value in enumerate(values)}


def draw_boundaries(file: Path, trained: Trained, documents: list[dict], networks: dict[str, int], splits: Splits,
                    heading: str) -> None:
    """Side by side on shared axes: too little regularization overfits, too much underfits."""
    grid = figures.plane(splits)
    net = trained.subset(list(networks.values()))  # every strength: the same layers as the whole path's batch
    probas, y_preds = figures.probabilities(net, *grid), predict(net, splits.X["test"])
    figures.decision_boundaries(file, dict(zip(networks, probas)), grid, splits,
                                {label: documents[k] for label, k in networks.items()}, dict(zip(networks, y_preds)),
                                heading)


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    args = parser.parse_args(argv)
    params = load_params()
    params.dataset(args.dataset)
    splits = load_splits(args.dataset)
    with atomic_dir(paths_dir(args.dataset)) as directory, atomic_dir(strength_views_dir(args.dataset)) as views:
        for name in params.paths:
            print(run_path(name, params, splits, directory, views, args.dataset))


if __name__ == "__main__":
    main()
