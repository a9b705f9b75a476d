"""Loss slices drawn side by side: per recipe, the 2-D slice of the train
loss around its trained network and the 1-D slice through it with train and
dev loss, on scales every recipe shares, so that flatness compares."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from matplotlib import colors
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pipeline.analysis.figures import MAX_COLUMNS, plain_log_ticks, save
from pipeline.analysis.loss_slices import line_slice

FIGURE = "loss_landscapes"  # the report's file, MLflow's image key
LEVELS = 16
# Below this share of the highest loss shown the contours stop: a loss near 0
# would otherwise spread the log levels over decades nobody reads.
LOWEST_SHARE = 1e-6
TRAINED_POINT = {"marker": "*", "color": "red", "markersize": 11, "markeredgecolor": "k", "markeredgewidth": 0.6}
PART_STYLES = {"train": {"color": "tab:blue", "linestyle": "-"}, "dev": {"color": "tab:orange", "linestyle": "--"}}
CAPTION = ("Slices along two random filter-normalized directions through the trained weights: the local shape and "
           "relative flatness along those directions; not the whole landscape, not the path training took, and a "
           "flatter slice does not by itself prove better generalization.")
CAPTION_SIZE = 8  # points
CHARACTERS_PER_INCH = 72 / (0.55 * CAPTION_SIZE)  # an average character is about 0.55 em wide
LEGEND_HEIGHT = 0.4  # inches


def shared_levels(slices: dict[str, dict]) -> np.ndarray:
    """Log-spaced train-loss levels over every recipe's slice (a flat slice,
    as of a network whose weights are all zero, gets a narrow band)."""
    losses = np.concatenate([np.ravel(s["train"]["loss"]) for s in slices.values()])
    highest = float(losses.max())
    lowest = max(float(losses.min()), LOWEST_SHARE * highest)
    return np.geomspace(lowest, max(highest, lowest * 1.01), LEVELS)


def loss_slice_figure(target: Path, slices: dict[str, dict], title: str) -> Figure:
    """slices: per recipe, a loss_slice result. A column per recipe, wrapped
    at MAX_COLUMNS: on top the 2-D train-loss slice's contours (the same log
    levels for every recipe, the trained network marked), below it the 1-D
    slice along the first direction with train and dev loss (one y axis for all)."""
    columns = min(len(slices), MAX_COLUMNS)
    groups = -(-len(slices) // columns)
    width = 2.6 * columns + 0.9
    caption = textwrap.fill(CAPTION, int(width * CHARACTERS_PER_INCH))
    footer = LEGEND_HEIGHT + (caption.count("\n") + 1.5) * CAPTION_SIZE * 1.2 / 72  # inches, under the panels
    height = 4.4 * groups + 0.6 + footer
    fig, axes = plt.subplots(2 * groups, columns, figsize=(width, height),
                             height_ratios=[2.6, 1.8] * groups, squeeze=False, layout="constrained")
    contour_axes, line_axes = list(axes[0::2].flat), list(axes[1::2].flat)
    for ax in (*contour_axes[len(slices):], *line_axes[len(slices):]):
        ax.remove()
    levels = shared_levels(slices)
    norm = colors.LogNorm(levels[0], levels[-1])
    for top, bottom, (recipe, result) in zip(contour_axes, line_axes, slices.items()):
        alphas = np.asarray(result["alphas"])
        image = top.contourf(alphas, alphas, np.asarray(result["train"]["loss"]), levels=levels, norm=norm,
                             cmap="viridis", extend="both")
        top.plot(0, 0, **TRAINED_POINT)
        top.set_aspect("equal")
        top.set_title(recipe, fontsize=10)
        top.set_xlabel("α (direction 1)", fontsize=8, labelpad=1)
        for part, style in PART_STYLES.items():
            if part in result:
                bottom.plot(alphas, line_slice(result, part), linewidth=1.2, **style)
        bottom.plot(0, line_slice(result, "train")[len(alphas) // 2], **TRAINED_POINT)
        bottom.set_xlabel("α (direction 1, β = 0)", fontsize=8, labelpad=1)
        bottom.set_yscale("log")
        plain_log_ticks(bottom.yaxis)
        for ax in (top, bottom):
            ax.tick_params(labelsize=7)
    for ax in line_axes[1:len(slices)]:
        ax.sharey(line_axes[0])
    for top, bottom in zip(axes[0::2, 0], axes[1::2, 0]):
        top.set_ylabel("β (direction 2)", fontsize=8, labelpad=1)
        bottom.set_ylabel("loss", fontsize=8)
    fig.colorbar(image, ax=contour_axes[:len(slices)], label="train loss", shrink=0.8, aspect=30,
                 ticks=levels[::3], format="{x:.3g}")
    handles = [Line2D([], [], label=f"{part} loss", **style) for part, style in PART_STYLES.items()]
    handles.append(Line2D([], [], linestyle="", label="the trained network", **TRAINED_POINT))
    # The legend and the caption in a strip kept free below the panels: the
    # constrained layout's own outside legend and figure labels overlap.
    fig.get_layout_engine().set(rect=(0, footer / height, 1, 1 - footer / height))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, footer / height), ncol=len(handles),
               fontsize=8, frameon=False)
    fig.text(0.5, 0.04 / height, caption, ha="center", va="bottom", fontsize=CAPTION_SIZE, color="0.3")
    fig.suptitle(title, fontsize=12)
    return save(fig, target)
