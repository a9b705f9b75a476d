"""Stage landscapes: what an L1 or L2 term does to a loss surface, on
artificial surfaces of two weights (no data, no network).

    python -m pipeline.stages.landscapes

Writes reports/landscapes/: <surface>.png per surface (a panel per penalty
and strength: the penalized surface's contours, its minimum and the track
the minimum took as the strength grew, the paths of gradient descent and
Adam from the same starts) and landscapes.json (those minima and where each
optimizer ended).
"""

from __future__ import annotations

import argparse

import numpy as np

from pipeline.analysis import landscapes
from pipeline.analysis.landscape_figures import landscape
from pipeline.config import load_params
from pipeline.core.atomic import atomic_dir, write_json
from pipeline.core.errors import cli
from pipeline.core.paths import landscapes_dir

TRACK_POINTS = 25  # strengths along each minimum's track, 0 and log-spaced up to the largest shown


def track_strengths(shown: list[float]) -> list[float]:
    top = max(shown)
    return [0.0] if top == 0 else [0.0, *np.geomspace(top / 1000, top, TRACK_POINTS - 1).tolist()]


def rounded(values: np.ndarray) -> list:
    return (values.round(6) + 0.0).tolist()  # + 0.0: no -0.0 in the file


@cli
def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    config = load_params().landscapes
    record = {}
    with atomic_dir(landscapes_dir()) as directory:
        for name, surface in config.surfaces.items():
            along = track_strengths(surface.strengths)
            tracks = {kind: landscapes.minimum_track(name, kind, along) for kind in config.penalties}
            minima = {kind: landscapes.minimum_track(name, kind, surface.strengths) for kind in config.penalties}
            settings = [(kind, strength) for kind in config.penalties for strength in surface.strengths]
            paths = {kind: {} for kind in config.penalties}
            for optimizer, lr in (("gd", surface.gd_lr), ("adam", surface.adam_lr)):  # every setting at once
                every = landscapes.trajectories(name, settings, surface.starts, optimizer, lr, config.steps)
                for i, kind in enumerate(config.penalties):
                    paths[kind][optimizer] = every[i * len(surface.strengths):(i + 1) * len(surface.strengths)]
            landscape(directory / f"{name}.png", name, surface.strengths, tracks, along, minima, paths)
            record[name] = {kind: [{"strength": strength, "minimum": rounded(minima[kind][i]),
                                    **{f"{optimizer}_ends": rounded(ends[i, :, -1])
                                       for optimizer, ends in paths[kind].items()}}
                                   for i, strength in enumerate(surface.strengths)] for kind in config.penalties}
        write_json(directory / "landscapes.json", record)
    print(f"landscapes: {', '.join(config.surfaces)} under {' and '.join(config.penalties)}, in {landscapes_dir()}")


if __name__ == "__main__":
    main()
