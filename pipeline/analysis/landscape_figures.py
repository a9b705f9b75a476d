"""The penalty landscapes drawn: per surface, a panel per penalty and shown
strength with the penalized surface's contours, where its minimum sits and
how it moved as the strength grew, and the paths of gradient descent and
Adam from the same starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pipeline.analysis.figures import save
from pipeline.analysis.landscapes import grid, objective
from pipeline.data.surfaces import SURFACES

PENALTY_NAMES = {"l2": "L2: + strength/2 |w|²", "l1": "L1: + strength |w|₁"}
OPTIMIZER_STYLES = {"gd": {"color": "white", "linestyle": "-"}, "adam": {"color": "tab:orange", "linestyle": "--"}}
OPTIMIZER_NAMES = {"gd": "gradient descent", "adam": "Adam"}
RESOLUTION = 161


def landscape(path: Path, name: str, shown: list[float], tracks: dict[str, np.ndarray], track_strengths: list[float],
              minima: dict[str, np.ndarray], paths: dict[str, dict[str, np.ndarray]]) -> Figure:
    """tracks[penalty]: the minimum at each of track_strengths; minima[penalty]:
    the minimum at each shown strength; paths[penalty][optimizer]: (shown,
    starts, steps + 1, 2) trajectories."""
    surface = SURFACES[name]
    xx, yy = grid(surface.reach, RESOLUTION)
    penalties = list(tracks)
    fig, axes = plt.subplots(len(penalties), len(shown), figsize=(2.6 * len(shown) + 0.4, 2.6 * len(penalties) + 0.9),
                             sharex=True, sharey=True, squeeze=False, layout="constrained")
    for row, kind in enumerate(penalties):
        for column, strength in enumerate(shown):
            ax = axes[row, column]
            values = objective(name, kind, strength)(xx, yy)
            # log levels: the shape near the minimum and far from it both show
            ax.contourf(xx, yy, np.log1p(values - values.min()), levels=14, cmap="viridis")
            ax.plot(*tracks[kind].T, color="red", linewidth=1.2)
            ax.plot(*minima[kind][column], marker="*", color="red", markersize=11, markeredgecolor="k",
                    markeredgewidth=0.6)
            for optimizer, trajectory in paths[kind].items():
                for points in trajectory[column]:
                    ax.plot(*points.T, linewidth=0.9, **OPTIMIZER_STYLES[optimizer])
                    ax.plot(*points[0], marker="o", markersize=3, color="k")
            ax.set_xlim(-surface.reach, surface.reach)
            ax.set_ylim(-surface.reach, surface.reach)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
            x, y = minima[kind][column]
            ax.set_title(f"{kind} {strength:g}: minimum ({x:.2f}, {y:.2f})", fontsize=8)
        axes[row, 0].set_ylabel(PENALTY_NAMES[kind], fontsize=8)
    handles = [Line2D([], [], color="red", label=f"the minimum as the strength grows from 0 to {track_strengths[-1]:g}"),
               Line2D([], [], color="red", marker="*", linestyle="", markeredgecolor="k", label="the minimum here"),
               *(Line2D([], [], label=OPTIMIZER_NAMES[o], **{**OPTIMIZER_STYLES[o],
                                                             "color": "0.5" if o == "gd" else OPTIMIZER_STYLES[o]["color"]})
                 for o in OPTIMIZER_NAMES)]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(f"{surface.title} with a penalty: contours of log(1 + loss − its minimum)", fontsize=10)
    return save(fig, path)
