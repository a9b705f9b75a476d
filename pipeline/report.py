"""Stage report: compare every recipe of one dataset.

Writes reports/<dataset>/summary.md (a table with the diagnosis of each
recipe), summary.json (the same figures, as DVC metrics) and
decision_boundaries.png (all recipes side by side on the same axes and colour
scale), and logs them to a run named "report" in the dataset's MLflow
experiment.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.atomic import write_json, write_text
from pipeline.config import PARAMS_FILE, RecipeConfig, ReportConfig, load_params
from pipeline.errors import PipelineError, cli
from pipeline.evaluate import metrics_path, model_path

REPORTS_DIR = Path("reports")


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
                return f"jitter std {recipe.augmentation.jitter_std:g}"
        raise ValueError(f"no key figure for {technique}")

    techniques = recipe.techniques()
    if not techniques:  # the baseline: the figures the others are compared with
        return f"sum W^2 {weights['squared_weight_sum']:.1f}, max column norm {weights['max_column_norm']:.2f}"
    return "; ".join(dict.fromkeys(figure(t) for t in techniques))


def summarize(metrics: dict[str, dict], suite: dict[str, RecipeConfig], thresholds: ReportConfig) -> dict:
    summary = {}
    for recipe, m in metrics.items():
        summary[recipe] = {
            "train_accuracy": m["train"]["accuracy"],
            "dev_accuracy": m["dev"]["accuracy"] if "dev" in m else None,
            "test_accuracy": m["test"]["accuracy"],
            "generalization_gap": m["train"]["accuracy"] - m["test"]["accuracy"],
            "diagnosis": diagnose(m, thresholds),
            "key_figure": key_figure(suite[recipe], m),
            "sparsity": m["weights"]["sparsity"],
            "max_column_norm": m["weights"]["max_column_norm"],
        }
    return summary


def markdown(dataset: str, summary: dict[str, dict], thresholds: ReportConfig) -> str:
    def pct(value):
        return "n/a" if value is None else f"{value:.1%}"

    lines = [
        f"# {dataset}: regularization recipes compared",
        "",
        "| recipe | train acc | dev acc | test acc | gap (train - test) | diagnosis | key figure |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for recipe, row in summary.items():
        lines.append(
            f"| {recipe} | {pct(row['train_accuracy'])} | {pct(row['dev_accuracy'])} | {pct(row['test_accuracy'])} "
            f"| {row['generalization_gap'] * 100:+.1f} pts | {row['diagnosis']} | {row['key_figure']} |"
        )
    lines += [
        "",
        f"Diagnosis: high bias when the train error exceeds {thresholds.high_bias_error:.0%}; high variance when "
        f"the dev error exceeds the train error by more than {thresholds.high_variance_gap:.0%} (test error when "
        "there is no dev set). Thresholds: `report` in params.yaml. Sparsity: share of weights with "
        "|w| below `analysis.sparsity_threshold`; column norm: norm of a neuron's incoming weights.",
        "",
        "![decision boundaries](decision_boundaries.png)",
        "",
    ]
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


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    dataset = parser.parse_args(argv).dataset
    params = load_params()
    params.dataset(dataset)  # names a known dataset
    metrics = {}
    for recipe in params.suite:
        try:
            metrics[recipe] = json.loads(metrics_path(dataset, recipe).read_text())
        except (OSError, ValueError):
            raise PipelineError(f"{metrics_path(dataset, recipe)} is missing or corrupt: run dvc repro") from None
    summary = summarize(metrics, params.suite, params.report)
    out = REPORTS_DIR / dataset
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", markdown(dataset, summary, params.report))
    paths = [out / "summary.md", out / "summary.json"]

    from pipeline.datasets import load_splits
    from pipeline.model import load_network

    splits = load_splits(dataset)
    if splits.n_features == 2:
        from pipeline.plots import decision_boundaries

        nets = {recipe: load_network(model_path(dataset, recipe)) for recipe in params.suite}
        decision_boundaries(out / "decision_boundaries.png", nets, splits, metrics)
        paths.append(out / "decision_boundaries.png")
    log_report(dataset, paths)
    print(f"report {dataset}: {out / 'summary.md'}")


if __name__ == "__main__":
    main()
