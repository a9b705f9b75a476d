"""Stage report: compare every recipe of one dataset, over seeds.

    python -m pipeline.stages.report moons

Writes reports/<dataset>/summary.md (per recipe: accuracies with 95%
intervals over seeds, the paired difference against the baseline and whether
the evidence separates them, a diagnosis and a key figure; the recipe and
path strengths chosen on dev), summary.json (the same numbers),
test_accuracy.json (each recipe's mean test accuracy: DVC's metrics, compact
enough for `dvc metrics show` and `dvc exp show`), figures/ (all recipes
side by side, first seed: decision boundaries or first-layer weights, and
weight histograms; every seed's weights over training and the statistics
the techniques act on, with intervals; the loss around each recipe's first
network; dropout's three ways to predict) and index.html (all of it, with
the penalty landscapes, in one page that opens offline, plus sliders over
the training step and each path's strength that switch a boundary and a
weight histogram together).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipeline.analysis import (dropout_at_test_time, dropout_figures, figures, interactive, loss_slice_figures,
                               weights_over_training)
from pipeline.analysis.evaluation import predict
from pipeline.analysis.landscapes import surfaces_drawn
from pipeline.analysis.regularization_path import by_strength, from_csv, one_standard_error, select
from pipeline.analysis.strength_views import load_views
from pipeline.analysis.summary import markdown, selected_on_dev, summarize
from pipeline.analysis.web_page import web_page
from pipeline.config import PipelineConfig, load_params
from pipeline.core.atomic import atomic_dir, read_json, write_json, write_text
from pipeline.core.errors import PipelineError, cli
from pipeline.core.paths import (dropout_at_test_time_path, landscapes_dir, loss_landscape_path, metrics_path,
                                 model_path, path_table, report_dir, snapshots_dir, strength_views_dir,
                                 weights_path)
from pipeline.data.splits import Splits, load_splits
from pipeline.engine import checkpoint
from pipeline.techniques import TECHNIQUES
from pipeline.usecases.training import load_snapshots, load_weights


def read_metrics(dataset: str, params: PipelineConfig) -> dict[str, list[dict]]:
    """Per recipe, its seeds' metrics documents in seed order; the baseline
    (no technique) first, the others in suite order."""
    metrics: dict[str, list[dict]] = {}
    for recipe in params.compared():
        for seed in params.seeds:
            metrics.setdefault(recipe, []).append(read_json(metrics_path(dataset, recipe, seed)))
    return metrics


def read_paths(dataset: str, params: PipelineConfig) -> dict[str, dict]:
    """Per path: the swept key, the strengths chosen on dev (the best, and the
    one-standard-error choice) and their dev and test accuracy."""
    chosen = {}
    for name, path in params.paths.items():
        file = path_table(dataset, name)
        technique = TECHNIQUES[path.sweep]
        try:
            table = from_csv(file.read_text())
            summary = by_strength(table)
            best, simpler = select(summary), one_standard_error(table, summary, technique.stronger)
        except (OSError, ValueError, KeyError):
            raise PipelineError(f"{file} is missing or corrupt: run dvc repro") from None
        if best is not None:
            chosen[name] = {"sweeps": f"{path.sweep}.{technique.sweeps}", "selected": best["strength"],
                            "dev_accuracy": best["dev_accuracy"], "test_accuracy": best["test_accuracy"],
                            "one_se": {"strength": simpler["strength"], "dev_accuracy": simpler["dev_accuracy"],
                                       "test_accuracy": simpler["test_accuracy"]}}
    return chosen


def comparison_figures(directory: Path, dataset: str, splits: Splits, metrics: dict[str, list[dict]]) -> list[str]:
    """All recipes side by side, each recipe's first seed: decision boundaries
    for points in the plane, first-layer weights for images, and for every
    dataset the weights on shared bins. Returns their paths relative to the report."""
    firsts = {recipe: checkpoint.load(model_path(dataset, recipe)).single(0) for recipe in metrics}
    first_metrics = {recipe: runs[0] for recipe, runs in metrics.items()}
    weights = {recipe: figures.weight_matrices(net, 0) for recipe, net in firsts.items()}
    drawn = []
    if splits.n_features == 2:
        grid = figures.plane(splits)
        probas = {recipe: figures.probabilities(net, *grid)[0] for recipe, net in firsts.items()}
        y_preds = {recipe: predict(net, splits.X["test"])[0] for recipe, net in firsts.items()}
        figures.decision_boundaries(directory / "decision_boundaries.png", probas, grid, splits, first_metrics, y_preds)
        drawn.append("decision_boundaries.png")
    if splits.image_shape is not None:
        first_layers = {recipe: matrices[0].T for recipe, matrices in weights.items()}  # (units, pixels)
        figures.first_layer_comparison(directory / "first_layer_weights.png", first_layers, splits.image_shape)
        drawn.append("first_layer_weights.png")
    figures.weight_histograms(directory / "weight_histograms.png", weights, first_metrics)
    drawn.append("weight_histograms.png")
    return [f"figures/{name}" for name in drawn]


def training_figures(directory: Path, dataset: str, weights: dict[str, dict[int, list[np.ndarray]]],
                     sparsity_threshold: float) -> tuple[list[str], dict[str, dict]]:
    """Every recipe's weights over training (all seeds): their histograms at
    each recorded step and the statistics' curves. Returns the figures' paths
    relative to the report, and per recipe the statistics' intervals by step."""
    intervals = {recipe: weights_over_training.statistic_intervals(by_step, sparsity_threshold)
                 for recipe, by_step in weights.items()}
    histograms, curves = (f"{name}.png" for name in weights_over_training.FIGURES)
    weights_over_training.histograms(directory / histograms, weights,
                                     f"{dataset}: every seed's weights during training, same range and bins")
    weights_over_training.statistic_curves(directory / curves, intervals, sparsity_threshold,
                                           f"{dataset}: what each technique acts on, during training "
                                           f"(mean over seeds, 95% interval)")
    return [f"figures/{histograms}", f"figures/{curves}"], intervals


def explore_section(dataset: str, params: PipelineConfig, weights: dict[str, dict[int, list[np.ndarray]]],
                    paths: dict[str, dict]) -> str:
    """The page's sliders: every recipe's first seed over training (its boundary
    images from the train stage, its recorded weights), and each path's first
    seed at every strength (from the path stage), the strength chosen on dev marked."""
    first = params.seeds[0]
    by_step = {recipe: {step: np.concatenate([m[0].ravel() for m in matrices]) for step, matrices in recorded.items()}
               for recipe, recorded in weights.items()}
    images = {recipe: {step: file.read_bytes() for step, file in load_snapshots(snapshots_dir(dataset, recipe),
                                                                                 first).items()}
              for recipe in weights}
    sliders = [interactive.training_slider(by_step, images)]
    for name, path in params.paths.items():
        swept = f"{path.sweep}.{TECHNIQUES[path.sweep].sweeps}"
        views = load_views(strength_views_dir(dataset) / f"{name}.npz")
        sliders.append(interactive.strength_slider(name, swept, views, paths.get(name, {}).get("selected")))
    return interactive.fragment(sliders)


def loss_landscape_figure(directory: Path, dataset: str, recipes: list[str]) -> list[str]:
    """Every recipe's loss slices side by side (none when analysis.loss_landscape
    has no points): the figure's path relative to the report, in a list."""
    slices = {recipe: found for recipe in recipes if (found := read_json(
              loss_landscape_path(dataset, recipe), "rerun the evaluate stage", optional=True)) is not None}
    if not slices:
        return []
    seed = next(iter(slices.values()))["network_seed"]
    loss_slice_figures.loss_slice_figure(directory / f"{loss_slice_figures.FIGURE}.png", slices,
                                         f"{dataset}: the loss around each recipe's network (seed {seed})")
    return [f"figures/{loss_slice_figures.FIGURE}.png"]


def dropout_figure(directory: Path, dataset: str, recipes: list[str]) -> tuple[str | None, dict[str, dict]]:
    """The recipes with dropout, predicting by weight scaling, Monte Carlo
    dropout and their seeds' ensemble: the figure's path relative to the
    report (None without such recipes), and the summary per recipe."""
    documents = {recipe: found for recipe in recipes if (found := read_json(
                 dropout_at_test_time_path(dataset, recipe), "rerun the evaluate stage", optional=True)) is not None}
    if not documents:
        return None, {}
    summary = dropout_at_test_time.summarize(documents)
    dropout_figures.dropout_at_test_time(directory / f"{dropout_figures.FIGURE}.png", summary,
                                         f"{dataset}: predicting with dropout three ways (mean over seeds, 95% "
                                         "interval; the ensemble is one model)")
    return f"figures/{dropout_figures.FIGURE}.png", summary


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    dataset = parser.parse_args(argv).dataset
    params = load_params()
    params.dataset(dataset)
    metrics = read_metrics(dataset, params)
    paths = read_paths(dataset, params)
    splits = load_splits(dataset)
    summary = summarize(metrics, params.suite, params.report)
    selection = selected_on_dev(metrics)
    out = report_dir(dataset)
    with atomic_dir(out / "figures") as directory:
        figure_paths = comparison_figures(directory, dataset, splits, metrics)
        weights = {recipe: load_weights(weights_path(dataset, recipe)) for recipe in metrics}
        training_paths, during_training = training_figures(directory, dataset, weights,
                                                           params.analysis.sparsity_threshold)
        dropout_path, dropout = dropout_figure(directory, dataset, list(metrics))
        slice_paths = loss_landscape_figure(directory, dataset, list(metrics))
        test_size = len(splits.y["test"])
        write_json(out / "summary.json", {"test_size": test_size, "seeds": params.seeds, "recipes": summary,
                                          "chosen_on_dev": selection, "paths": paths,
                                          "weights_during_training": during_training,
                                          "dropout_at_test_time": dropout})
        write_json(out / "test_accuracy.json",
                   {recipe: round(row["test_accuracy"]["mean"], 4) for recipe, row in summary.items()})
        boundaries = {name: f"paths/{name}_boundaries.png" for name in paths
                      if (out / f"paths/{name}_boundaries.png").exists()}
        landscapes = [f"../{landscapes_dir().name}/{name}.png" for name in surfaces_drawn(landscapes_dir())]
        page = markdown(dataset, summary, selection, paths, test_size, params.report, figure_paths, boundaries,
                        training_paths, landscapes, dropout, dropout_path, slice_paths)
        write_text(out / "summary.md", page)
    # after the figures' directory is in place: the page embeds them
    write_text(out / "index.html", web_page(f"{dataset}: regularization report", page, out,
                                            explore_section(dataset, params, weights, paths)))
    print(f"report {dataset}: {out / 'summary.md'}")


if __name__ == "__main__":
    main()
