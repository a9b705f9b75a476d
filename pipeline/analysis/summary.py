"""The report's content: per recipe, intervals over seeds, the paired
difference against the baseline, a diagnosis and a key figure; the recipe
and path strengths chosen on dev; and the markdown page."""

from __future__ import annotations

import numpy as np

from pipeline.analysis.statistics import (adjusted_verdict, binomial_standard_error, holm, interval,
                                          paired_difference, paired_p_value, seeds_needed, verdict, win_probability)
from pipeline.config import ReportConfig
from pipeline.techniques import TECHNIQUES

PARTS = ("train", "dev", "test")


def diagnose(train_accuracy: float, held_out_accuracy: float, thresholds: ReportConfig) -> str:
    """Bias from the train error, variance from the gap between train error
    and held-out (dev, else test) error."""
    train_error = 1 - train_accuracy
    gap = (1 - held_out_accuracy) - train_error
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


def mean_document(runs: list[dict]) -> dict:
    """One metrics document from a recipe's seeds: the mean of every number."""
    return {part: {name: float(np.mean([r[part][name] for r in runs])) for name in runs[0][part]}
            for part in (*PARTS, "weights", "training") if part in runs[0]}


def key_figure(recipe, mean: dict) -> str:
    """What each technique of the recipe did; for the baseline, the figures the others are compared with."""
    names = recipe.techniques()
    if not names:
        weights = mean["weights"]
        return f"sum W^2 {weights['squared_weight_sum']:.1f}, max column norm {weights['max_column_norm']:.2f}"
    return "; ".join(dict.fromkeys(TECHNIQUES[n].key_figure(getattr(recipe, n), mean) for n in names))


def accuracies(runs: list[dict], part: str) -> list[float] | None:
    return [r[part]["accuracy"] for r in runs] if part in runs[0] else None


def summarize(metrics: dict[str, list[dict]], suite: dict, thresholds: ReportConfig) -> dict:
    """Per recipe, runs in the same seed order for every recipe."""
    baseline = next((name for name in metrics if not suite[name].techniques()), None)
    held_out = "dev" if "dev" in next(iter(metrics.values()))[0] else "test"
    summary = {}
    for name, runs in metrics.items():
        mean = mean_document(runs)
        row = {"seeds": len(runs)}
        for part in PARTS:
            values = accuracies(runs, part)
            row[f"{part}_accuracy"] = interval(values, bounds=(0.0, 1.0)) if values else None
        row["test_accuracy_seed_sd"] = float(np.std(accuracies(runs, "test"), ddof=1)) if len(runs) > 1 else None
        row["test_loss"] = interval([r["test"]["loss"] for r in runs])
        row["generalization_gap"] = interval(np.subtract(accuracies(runs, "train"), accuracies(runs, "test")))
        if baseline is not None and name != baseline:
            ours, theirs = accuracies(runs, "test"), accuracies(metrics[baseline], "test")
            row["test_accuracy_vs_baseline"] = paired_difference(ours, theirs)
            row["p_value"] = paired_p_value(ours, theirs)
            row["beats_baseline"] = win_probability(ours, theirs)
            row["seeds_needed"] = seeds_needed(ours, theirs, comparisons=len(metrics) - 1)
        row["diagnosis"] = diagnose(mean["train"]["accuracy"], mean[held_out]["accuracy"], thresholds)
        row["key_figure"] = key_figure(suite[name], mean)
        row |= {k: mean["weights"][k] for k in ("sparsity", "max_column_norm", "squared_weight_sum")}
        summary[name] = row
    # "separated" means after Holm's adjustment over all of the dataset's comparisons with the baseline
    compared = [name for name in summary if "p_value" in summary[name]]
    for name, adjusted in zip(compared, holm([summary[name]["p_value"] for name in compared])):
        summary[name]["p_value_holm"] = adjusted
        summary[name]["verdict"] = adjusted_verdict(summary[name]["test_accuracy_vs_baseline"], adjusted)
    return summary


def selected_on_dev(metrics: dict[str, list[dict]]) -> dict | None:
    """The recipe with the best mean dev accuracy, and the recipes whose paired
    dev difference from it is not separated from 0. None without a dev set."""
    if "dev" not in next(iter(metrics.values()))[0]:
        return None
    best = max(metrics, key=lambda name: np.mean(accuracies(metrics[name], "dev")))
    tied = [name for name in metrics if name != best and verdict(
        paired_difference(accuracies(metrics[name], "dev"), accuracies(metrics[best], "dev"))) == "not separated"]
    return {"recipe": best, "not_separated_on_dev": tied}


# --- markdown --------------------------------------------------------------------


def pct(estimate: dict | None) -> str:
    if estimate is None:
        return "n/a"
    if estimate["ci95_low"] is None:
        return f"{estimate['mean']:.1%}"
    return f"{estimate['mean']:.1%} [{estimate['ci95_low'] * 100:.1f}, {estimate['ci95_high'] * 100:.1f}]"


def points(estimate: dict | None) -> str:
    """A difference of accuracies in percentage points, with its interval."""
    if estimate is None:
        return "—"
    if estimate["ci95_low"] is None:
        return f"{estimate['mean'] * 100:+.1f} pts"
    return f"{estimate['mean'] * 100:+.1f} [{estimate['ci95_low'] * 100:+.1f}, {estimate['ci95_high'] * 100:+.1f}] pts"


def p_values(row: dict) -> str:
    if "p_value" not in row:
        return "—"
    return f"{row['p_value']:.2g}, {row['p_value_holm']:.2g}"


def share(estimate: dict | None) -> str:
    """A probability with its interval, in percent."""
    if estimate is None:
        return "—"
    return f"{estimate['mean']:.0%} [{estimate['ci95_low'] * 100:.0f}, {estimate['ci95_high'] * 100:.0f}]"


def needed(row: dict) -> str:
    if "p_value" not in row:
        return "—"
    return "—" if row["seeds_needed"] is None else f"{row['seeds_needed']}"


VERDICTS = {"higher": "higher than baseline", "lower": "lower than baseline", "not separated": "not separated"}


def markdown(dataset: str, summary: dict[str, dict], selection: dict | None, paths: dict[str, dict],
             test_size: int, thresholds: ReportConfig, figures: list[str],
             path_figures: dict[str, str] | None = None, training_figures: list[str] = (),
             landscape_figures: list[str] = (), dropout: dict[str, dict] | None = None,
             dropout_figure: str | None = None, loss_landscape_figures: list[str] = ()) -> str:
    """The report page; figures are image paths relative to it, each shown
    under the table; path_figures, per path, its boundary at each strength;
    training_figures, the weights over training; landscape_figures, the
    penalty landscapes; dropout, the recipes with dropout predicting three
    ways (dropout_at_test_time.summarize()), drawn in dropout_figure;
    loss_landscape_figures, the loss around each recipe's network."""
    seeds = max(row["seeds"] for row in summary.values())
    typical = next(iter(summary.values()))["test_accuracy"]["mean"]
    sampling = binomial_standard_error(typical, test_size)
    spreads = [row["test_accuracy_seed_sd"] for row in summary.values() if row["test_accuracy_seed_sd"] is not None]
    spread = float(np.median(spreads)) if spreads else None
    compared = sum("p_value" in row for row in summary.values())
    lines = [
        f"# {dataset}: regularization recipes compared over {seeds} seed{'s' * (seeds > 1)}",
        "",
        f"Test set: {test_size} examples, so sampling the test set alone moves an accuracy near {typical:.0%} by a "
        f"standard error of {sampling * 100:.2f} points"
        + (f", {'below' if sampling < spread else 'not below'} the spread between seeds (standard deviation "
           f"{spread * 100:.2f} points, median over recipes)." if spread is not None else ".")
        + " Brackets are 95% t-intervals over seeds (initialization, minibatch order, masks, noise) on these fixed "
        "splits; *test vs baseline* is the paired difference, seed by seed, with its p-value (paired t-test) raw "
        f"and adjusted for the {compared} comparisons with the baseline (Holm). A verdict needs the adjusted value "
        "below 0.05; *not separated* means the evidence does not tell the two apart, so they are not ranked. "
        "*Beats baseline* is the share of seeds on which the recipe scored higher (ties half), an estimate of the "
        "chance it wins on a fresh seed; *seeds needed* is how many seeds a paired t-test would need to separate "
        f"the observed difference at its observed spread (80% power, at Holm's strictest level, 0.05 / {compared}).",
        "",
        "| recipe | train acc | dev acc | test acc | test vs baseline | p (raw, Holm) | verdict | beats baseline "
        "| seeds needed | gap (train − test) | diagnosis | key figure |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|",
    ]
    for name, row in summary.items():
        lines.append(
            f"| {name} | {pct(row['train_accuracy'])} | {pct(row['dev_accuracy'])} | {pct(row['test_accuracy'])} "
            f"| {points(row.get('test_accuracy_vs_baseline'))} | {p_values(row)} | {VERDICTS.get(row.get('verdict'), '—')} "
            f"| {share(row.get('beats_baseline'))} | {needed(row)} "
            f"| {row['generalization_gap']['mean'] * 100:+.1f} pts | {row['diagnosis']} | {row['key_figure']} |")
    lines += [""]
    if selection is not None:
        best = summary[selection["recipe"]]
        tied = ", ".join(selection["not_separated_on_dev"]) or "none"
        lines += [f"**Chosen on dev: {selection['recipe']}** (dev {pct(best['dev_accuracy'])}); on test it scores "
                  f"{pct(best['test_accuracy'])}. Not separated from it on dev (paired): {tied}.", ""]
    if paths:
        lines += ["## Regularization paths", "",
                  "Each technique alone, its strength swept over a grid, every value trained on every seed; values "
                  "are chosen on dev, then reported on test: the best (highest mean dev accuracy) and the "
                  "one-standard-error choice (the most regularized value whose mean dev accuracy is within one "
                  "standard error over seeds of the best's, as glmnet's lambda.1se).", "",
                  "| path | swept | best on dev | dev acc | test acc | 1-SE choice | dev acc | test acc | figure |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for name, path in paths.items():
            simpler = path["one_se"]
            lines.append(f"| {name} | {path['sweeps']} | {path['selected']:g} | {pct(path['dev_accuracy'])} "
                         f"| {pct(path['test_accuracy'])} | {simpler['strength']:g} | {pct(simpler['dev_accuracy'])} "
                         f"| {pct(simpler['test_accuracy'])} | [paths/{name}.png](paths/{name}.png) |")
        lines += [""]
        for name, figure in (path_figures or {}).items():
            lines += [f"![{name} path: the decision boundary at each strength]({figure})", ""]
    lines += [
        "Diagnosis and key figures are of the means over seeds: high bias when the train error exceeds "
        f"{thresholds.high_bias_error:.0%}; high variance when the dev error exceeds the train error by more than "
        f"{thresholds.high_variance_gap:.0%} (test error when there is no dev set). Thresholds: `report` in "
        "params.yaml. Sparsity: share of weights with |w| below `analysis.sparsity_threshold`; column norm: norm "
        "of a neuron's incoming weights.",
        "",
    ]
    lines += figure_section("Figures", figures, "{} (first seed)",
                            "Every recipe's first seed, side by side on shared axes.")
    lines += figure_section(
        "Weights over training", training_figures, "{}",
        "Every seed's weights (biases aside) at log-spaced steps, 0, 1, 3, 10, 30, ...: weights move most at first. "
        "L2's gradient is proportional to a weight, so it shrinks them all in proportion; L1's is a constant pull, "
        "which piles weights near zero but overshoots it, so they reach exactly zero only under `l1.mode: "
        "proximal`; max-norm caps each neuron's incoming norm. The curves are means over seeds with their 95% "
        "intervals.")
    lines += figure_section(
        "Loss landscapes of the trained networks", loss_landscape_figures, "{}",
        "The train and dev loss around each recipe's first network, along two random directions in weight space "
        "(Li et al., 2018): each neuron's share of a direction scaled to that neuron's weights, so networks whose "
        "weights differ in scale, as regularization makes them, compare on one scale. A slice shows the local "
        "shape and relative flatness along those two directions: not the whole landscape, not the path training "
        "took, and a flatter minimum does not by itself mean better generalization.")
    lines += dropout_section(dropout or {}, dropout_figure)
    lines += figure_section(
        "Penalty landscapes", landscape_figures, "penalty landscape: {}",
        "What the penalty does to a loss surface, on artificial surfaces of two weights: as the strength grows, L2 "
        "pulls the minimum towards the origin along a curve, every coordinate shrinking; L1 moves it until a "
        "coordinate is exactly 0 and keeps it there. Gradient descent and Adam start from the same points; under "
        "L1, gradient descent zigzags across the axis it cannot settle on.")
    return "\n".join(lines)


def figure_section(heading: str, figures: list[str], caption: str, text: str) -> list[str]:
    """A section of the page: its heading and text, then each figure with the
    caption (a format string) of its file's name; nothing without figures."""
    if not figures:
        return []
    lines = [f"## {heading}", "", text, ""]
    for figure in figures:
        name = figure.rsplit("/", 1)[-1].removesuffix(".png").replace("_", " ")
        lines += [f"![{caption.format(name)}]({figure})", ""]
    return lines


def decimal(estimate: dict, signed: bool = False) -> str:
    """A number (a log-likelihood) with its interval, three decimals."""
    form = "+.3f" if signed else ".3f"
    if estimate["ci95_low"] is None:
        return f"{estimate['mean']:{form}}"
    return f"{estimate['mean']:{form}} [{estimate['ci95_low']:{form}}, {estimate['ci95_high']:{form}}]"


def dropout_section(summary: dict[str, dict], figure: str | None) -> list[str]:
    """Dropout at test time: per recipe with dropout, weight scaling, Monte
    Carlo dropout, their paired difference and the seeds' ensemble."""
    if not summary:
        return []
    first = next(iter(summary.values()))
    compared = 3 * len(summary)
    lines = [
        "## Dropout at test time", "",
        "A network trained with dropout can predict three ways. **Weight scaling**, as it was trained: no mask at "
        "test time, every unit at its expected output (the networks train with inverted dropout, so nothing is "
        "rescaled). **Monte Carlo dropout**: the mean of the predictions of T fresh masks, an ensemble of T thinned "
        "networks sharing their weights. **The seeds' ensemble**: the mean of every seed's network, each by weight "
        f"scaling. All three on the same {first['test_points']} random test points: accuracy, negative "
        "log-likelihood (NLL, the mean −log probability of the true class, which punishes confident mistakes) and "
        "expected calibration error (ECE: how far confidence is from accuracy, over confidence bins); lower is "
        "better for both. Brackets are 95% intervals over seeds; *Monte Carlo − weight scaling* is paired seed by "
        f"seed, its verdict adjusted (Holm) for the {compared} comparisons here. The ensemble is one model: its "
        "interval is over resampled test points only.", "",
        "| recipe | prediction | accuracy | NLL | ECE |",
        "|---|---|---:|---:|---:|",
    ]

    def ensemble(estimate: dict) -> dict:
        return {"mean": estimate["value"], "ci95_low": estimate["ci95_low"], "ci95_high": estimate["ci95_high"]}

    def difference(estimate: dict, form) -> str:
        said = {"higher": "Monte Carlo higher", "lower": "Monte Carlo lower"}.get(estimate["verdict"], "not separated")
        return f"{form(estimate)}: {said} (Holm p {estimate['p_value_holm']:.2g})"

    for recipe, row in summary.items():
        differences = row["monte_carlo_minus_weight_scaling"]
        lines += [
            f"| {recipe} | weight scaling | {pct(row['weight_scaling']['accuracy'])} "
            f"| {decimal(row['weight_scaling']['nll'])} | {pct(row['weight_scaling']['ece'])} |",
            f"| {recipe} | Monte Carlo, T = {row['samples']} | {pct(row['monte_carlo']['accuracy'])} "
            f"| {decimal(row['monte_carlo']['nll'])} | {pct(row['monte_carlo']['ece'])} |",
            f"| {recipe} | Monte Carlo − weight scaling | {difference(differences['accuracy'], points)} "
            f"| {difference(differences['nll'], lambda e: decimal(e, signed=True))} "
            f"| {difference(differences['ece'], points)} |",
            f"| {recipe} | ensemble of the {row['seeds']} seeds' networks "
            f"| {pct(ensemble(row['seed_ensemble']['accuracy']))} "
            f"| {decimal(ensemble(row['seed_ensemble']['nll']))} | {pct(ensemble(row['seed_ensemble']['ece']))} |",
        ]
    lines += [""]
    if figure is not None:
        lines += [f"![dropout at test time: scores against the number of masks averaged]({figure})", ""]
    return lines
