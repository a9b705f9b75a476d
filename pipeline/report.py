"""Stage report: compare every recipe of one dataset.

Writes reports/<dataset>/summary.md (a table with the diagnosis of each
recipe; mean ± std over the seeds when there are several), summary.json (the
same figures, as DVC metrics) and figures/ (all recipes side by side:
decision boundaries on the same axes and colour scale for 2-D data,
first-layer weights for images), and logs them to a run named "report" in
the dataset's MLflow experiment.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_dir, write_json, write_text
from pipeline.config import PARAMS_FILE, RecipeConfig, ReportConfig, load_params
from pipeline.errors import PipelineError, cli
from pipeline.paths import metrics_path, model_path, report_dir


def diagnose(metrics: dict, thresholds: ReportConfig) -> str:
    """Bias from the train error, variance from the gap between train error
    and dev error (test error when there is no dev set)."""
    train_error = 1 - metrics["train"]["accuracy"]
    held_out = metrics.get("dev", metrics["test"])
    gap = (1 - held_out["accuracy"]) - train_error
    # rounded: accuracies are ratios of counts, and 0.15 - 0.10 must not exceed 0.05
    high_bias = round(train_error, 9) > thresholds.high_bias_error
    high_variance = round(gap, 9) > thresholds.high_variance_gap
    if high_bias and high_variance:
        return "high bias and high variance"
    if high_bias:
        return "high bias (underfitting)"
    if high_variance:
        return "high variance (overfitting)"
    return "appropriate"


def key_figure(recipe: RecipeConfig, metrics: dict) -> str:
    """The number that shows what each technique of the recipe did."""
    weights, training = metrics["weights"], metrics["training"]

    def figure(technique: str) -> str:
        match technique:
            case "l1" | "elastic_net":
                return f"sparsity {weights['sparsity']:.0%}"
            case "l2":
                return f"sum W^2 {weights['squared_weight_sum']:.1f}"
            case "max_norm":
                return f"max column norm {weights['max_column_norm']:.2f}"
            case "dropout":
                keep = "/".join(f"{k:g}" for k in recipe.dropout.keep_prob)
                return f"keep {keep}, {recipe.dropout.mask} masks"
            case "batch_norm":
                return f"batch norm {recipe.batch_norm.position.replace('_', ' ')}"
            case "early_stopping":
                return f"stopped at step {training['stopped_step']} (best {training['best_step']})"
            case "augmentation":
                a = recipe.augmentation
                moves = [f"jitter std {a.jitter_std:g}"] if a.jitter_std else []
                moves += [f"shift ≤ {a.max_shift} px"] if a.max_shift else []
                moves += [f"rotation ≤ {a.max_rotation:g}°"] if a.max_rotation else []
                return ", ".join(moves) or "no augmentation configured"
        raise ValueError(f"no key figure for {technique}")

    techniques = recipe.techniques()
    if not techniques:  # the baseline: the figures the others are compared with
        return f"sum W^2 {weights['squared_weight_sum']:.1f}, max column norm {weights['max_column_norm']:.2f}"
    return "; ".join(dict.fromkeys(figure(t) for t in techniques))


def mean_metrics(runs: list[dict]) -> dict:
    """One metrics document from a recipe's seeds: the mean of every number
    (accuracies, losses, weight figures); the first seed's training record."""
    averaged = {part: {name: float(np.mean([r[part][name] for r in runs])) for name in runs[0][part]}
                for part in ("train", "dev", "test", "weights") if part in runs[0]}
    return averaged | {"training": runs[0]["training"]}


def summarize(metrics: dict[str, list[dict]], suite: dict[str, RecipeConfig], thresholds: ReportConfig) -> dict:
    """Per recipe: the mean over its seeds of each figure, the sample standard
    deviation of the accuracies (0 for one seed), and the diagnosis of the means."""
    summary = {}
    for recipe, runs in metrics.items():
        m = mean_metrics(runs)
        row = {"seeds": len(runs)}
        for part in ("train", "dev", "test"):
            values = [r[part]["accuracy"] for r in runs] if part in m else None
            row[f"{part}_accuracy"] = float(np.mean(values)) if values else None
            row[f"{part}_accuracy_std"] = float(np.std(values, ddof=1)) if values and len(values) > 1 else 0.0
        summary[recipe] = row | {
            "generalization_gap": m["train"]["accuracy"] - m["test"]["accuracy"],
            "diagnosis": diagnose(m, thresholds),
            "key_figure": key_figure(suite[recipe], m),
            "sparsity": m["weights"]["sparsity"],
            "max_column_norm": m["weights"]["max_column_norm"],
        }
    return summary


def markdown(dataset: str, summary: dict[str, dict], thresholds: ReportConfig, figure: str | None) -> str:
    seeds = max(row["seeds"] for row in summary.values())

    def pct(row, part):
        value, std = row[f"{part}_accuracy"], row[f"{part}_accuracy_std"]
        if value is None:
            return "n/a"
        return f"{value:.1%} ± {std * 100:.1f}" if seeds > 1 else f"{value:.1%}"

    over = f" (mean ± std over {seeds} seeds)" if seeds > 1 else ""
    lines = [
        f"# {dataset}: regularization recipes compared{over}",
        "",
        "| recipe | train acc | dev acc | test acc | gap (train - test) | diagnosis | key figure |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for recipe, row in summary.items():
        lines.append(
            f"| {recipe} | {pct(row, 'train')} | {pct(row, 'dev')} | {pct(row, 'test')} "
            f"| {row['generalization_gap'] * 100:+.1f} pts | {row['diagnosis']} | {row['key_figure']} |"
        )
    lines += [
        "",
        f"Diagnosis: high bias when the train error exceeds {thresholds.high_bias_error:.0%}; high variance when "
        f"the dev error exceeds the train error by more than {thresholds.high_variance_gap:.0%} (test error when "
        "there is no dev set). Thresholds: `report` in params.yaml. Sparsity: share of weights with "
        "|w| below `analysis.sparsity_threshold`; column norm: norm of a neuron's incoming weights.",
        "",
    ]
    if figure:
        lines += [f"![{Path(figure).stem.replace('_', ' ')}]({figure})", ""]
    return "\n".join(lines)


def log_report(dataset: str, paths: list[Path]) -> None:
    from pipeline.tracking import connect, experiment_id, pipeline_run_id

    client = connect()
    run = client.create_run(experiment_id(client, dataset), run_name="report",
                            tags={"dataset": dataset, "pipeline_run": pipeline_run_id(PARAMS_FILE), "kind": "report"})
    try:
        for path in paths:
            client.log_artifact(run.info.run_id, str(path))
    except BaseException:
        client.set_terminated(run.info.run_id, "FAILED")
        raise
    client.set_terminated(run.info.run_id, "FINISHED")


def comparison_figure(directory: Path, dataset: str, seed: int, metrics: dict[str, dict]) -> Path | None:
    """All recipes side by side (one seed's networks, with that seed's metrics
    per recipe): decision boundaries for points in the plane, first-layer
    weights for images."""
    from pipeline import plots
    from pipeline.datasets import load_splits
    from pipeline.model import load_network

    splits = load_splits(dataset)
    if splits.n_features != 2 and splits.image_shape is None:
        return None
    nets = {recipe: load_network(model_path(dataset, recipe, seed)) for recipe in metrics}
    if splits.n_features == 2:
        path = directory / "decision_boundaries.png"
        plots.decision_boundaries(path, nets, splits, metrics)
    else:
        path = directory / "first_layer_weights.png"
        plots.first_layer_comparison(path, nets, splits.image_shape)
    return path


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    dataset = parser.parse_args(argv).dataset
    params = load_params()
    params.dataset(dataset)  # names a known dataset
    # the baseline (no technique) first, for comparison; the others in suite order
    recipes = sorted(params.suite, key=lambda recipe: bool(params.suite[recipe].techniques()))
    metrics: dict[str, list[dict]] = {}
    for recipe in recipes:
        for seed in params.seeds:
            path = metrics_path(dataset, recipe, seed)
            try:
                metrics.setdefault(recipe, []).append(json.loads(path.read_text()))
            except (OSError, ValueError):
                raise PipelineError(f"{path} is missing or corrupt: run dvc repro") from None
    summary = summarize(metrics, params.suite, params.report)
    out = report_dir(dataset)
    with atomic_dir(out / "figures") as figures:
        first_seed = {recipe: runs[0] for recipe, runs in metrics.items()}
        figure = comparison_figure(figures, dataset, params.seeds[0], first_seed)
        shown = f"figures/{figure.name}" if figure else None
        write_json(out / "summary.json", summary)
        write_text(out / "summary.md", markdown(dataset, summary, params.report, shown))
    paths = [out / "summary.md", out / "summary.json", *([out / shown] if shown else [])]
    log_report(dataset, paths)
    print(f"report {dataset}: {out / 'summary.md'}")


if __name__ == "__main__":
    main()
