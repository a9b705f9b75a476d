"""Weights over training: how each recipe moves the weight distribution (L2
shrinks every weight in proportion, L1 piles them at zero, max-norm caps
the columns) and the statistic each technique acts on, step by step, with
seed intervals. From the weights the engine recorded at log-spaced steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pipeline.analysis.figures import label_outer, panel_grid, plain_log_ticks, save
from pipeline.analysis.statistics import interval
from pipeline.analysis.weights import STATISTICS, statistics_during_training

FIGURES = ("weights_during_training", "weight_statistics_during_training")  # the report's files, MLflow's image keys
BINS = 81  # odd: the middle bin is centred on zero, where L1 piles its weights
LABELS = {"squared_weight_sum": "sum W² (L2's)", "sparsity": "share |w| < {threshold:g} (L1's)",
          "zero_fraction": "share exactly 0 (proximal L1's)", "max_column_norm": "max column norm (max-norm's)"}

LOG_SCALED = ("squared_weight_sum", "max_column_norm")  # shrinkage is a factor: equal factors, equal heights


def statistic_intervals(weights: dict[int, list[np.ndarray]], sparsity_threshold: float
                        ) -> dict[str, list[dict]]:
    """Per statistic, per recorded step: {"step", "mean", "ci95_low", "ci95_high", "n"} over the seeds."""
    per_step = statistics_during_training(weights, sparsity_threshold)
    return {name: [{"step": step, **interval([network[name] for network in networks])}
                   for step, networks in per_step.items()] for name in STATISTICS}


def step_colours(steps: list[int]) -> dict[int, tuple]:
    return dict(zip(steps, plt.get_cmap("viridis")(np.linspace(0, 0.92, len(steps)))))


def histograms(path: Path, weights: dict[str, dict[int, list[np.ndarray]]], heading: str) -> Figure:
    """A panel per recipe: every seed's weights (all matrices, biases aside) at
    each recorded step, a line per step from dark (start) to yellow (end), on
    one symmetric range with the same bins and counts axis for every recipe."""
    reach = max(float(np.abs(m).max()) for by_step in weights.values() for matrices in by_step.values()
                for m in matrices) or 1.0
    edges = np.linspace(-reach, reach, BINS + 1)
    steps = sorted({step for by_step in weights.values() for step in by_step})
    colours = step_colours(steps)
    fig, axes = panel_grid(len(weights), (2.9, 2.2), (1.0, 0.9), layout="constrained")
    for ax, (recipe, by_step) in zip(axes, weights.items()):
        for step, matrices in by_step.items():
            values = np.concatenate([m.ravel() for m in matrices])
            ax.stairs(np.histogram(values, edges)[0], edges, color=colours[step], linewidth=1.0)
        ax.axvline(0, color="0.75", linewidth=0.6, zorder=0)
        ax.set_title(recipe, fontsize=10)
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    label_outer(axes, "weight value", "count (every seed)")
    handles = [Line2D([], [], color=colours[step], label=f"step {step}") for step in steps]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(steps), 6), fontsize=9, frameon=False)
    fig.suptitle(heading, fontsize=12)
    return save(fig, path)


def statistic_curves(path: Path, intervals: dict[str, dict[str, list[dict]]], sparsity_threshold: float,
                     heading: str) -> Figure:
    """A panel per statistic: each recipe's mean over seeds against the step
    (log axis, step 0 at its left end) with its 95% interval as a band."""
    fig, axes = plt.subplots(1, len(STATISTICS), figsize=(3.3 * len(STATISTICS), 3.4), layout="constrained")
    colours = plt.get_cmap("tab10")
    for ax, name in zip(axes, STATISTICS):
        for i, (recipe, by_statistic) in enumerate(intervals.items()):
            points = by_statistic[name]
            steps = np.array([p["step"] for p in points], dtype=float)
            mean = np.array([p["mean"] for p in points])
            low = np.array([p["mean"] if p["ci95_low"] is None else p["ci95_low"] for p in points])
            high = np.array([p["mean"] if p["ci95_high"] is None else p["ci95_high"] for p in points])
            colour = colours(i % 10)  # past ten recipes, the colours come back dashed
            ax.plot(steps, mean, color=colour, linewidth=1.2, marker=".", markersize=4, label=recipe,
                    linestyle=("-", "--", ":")[i // 10 % 3])
            ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)
        plain_log_ticks(ax.xaxis)
        if name in LOG_SCALED:
            ax.set_yscale("log")
            plain_log_ticks(ax.yaxis)
        else:  # a share: its whole range, so that none at all reads as none
            ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("step")
        ax.set_title(LABELS[name].format(threshold=sparsity_threshold), fontsize=10)
        ax.tick_params(labelsize=8)
    handles = axes[0].get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=9, frameon=False)
    fig.suptitle(heading, fontsize=12)
    return save(fig, path)
