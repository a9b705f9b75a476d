"""Dropout at test time drawn: per metric, Monte Carlo dropout's score against
the number of masks averaged, beside weight scaling's and the seeds'
ensemble's, each with its interval."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from pipeline.analysis.dropout_at_test_time import METRICS
from pipeline.analysis.figures import plain_log_ticks, save

FIGURE = "dropout_at_test_time"  # the report's file, MLflow's image key
LABELS = {"accuracy": "accuracy (%)", "nll": "negative log-likelihood", "ece": "expected calibration error (%)"}
PERCENT = {"accuracy", "ece"}


def dropout_at_test_time(path: Path, summary: dict[str, dict], title: str) -> Figure:
    """summary: dropout_at_test_time.summarize()'s, per recipe."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.6), layout="constrained")
    for ax, metric in zip(axes, METRICS):
        scale = 100 if metric in PERCENT else 1
        for index, (recipe, row) in enumerate(summary.items()):
            colour = f"C{index}"
            counts = row["monte_carlo_by_samples"]["samples"]
            by_samples = row["monte_carlo_by_samples"][metric]
            ax.plot(counts, [e["mean"] * scale for e in by_samples], color=colour, marker="o", markersize=3,
                    label=f"{recipe}: Monte Carlo, mean of T masks")
            if by_samples[0]["ci95_low"] is not None:
                ax.fill_between(counts, [e["ci95_low"] * scale for e in by_samples],
                                [e["ci95_high"] * scale for e in by_samples], color=colour, alpha=0.2, linewidth=0)
            scaled = row["weight_scaling"][metric]
            ax.axhline(scaled["mean"] * scale, color=colour, linestyle=":", label=f"{recipe}: weight scaling")
            if scaled["ci95_low"] is not None:
                ax.axhspan(scaled["ci95_low"] * scale, scaled["ci95_high"] * scale, color=colour, alpha=0.08,
                           linewidth=0)
            ensemble = row["seed_ensemble"][metric]
            ax.axhline(ensemble["value"] * scale, color=colour, linestyle="--",
                       label=f"{recipe}: ensemble of the {row['seeds']} seeds' networks")
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
        ax.set_xticks(counts)
        ax.set_xlabel("T, masks averaged")
        ax.set_ylabel(LABELS[metric])
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)
