"""fit()'s progress bar, which only the ad-hoc run turns on: one bar of
optimizer steps, although Lightning sees one batch of eval_every steps per epoch."""

from __future__ import annotations

import re

import numpy as np
from sklearn.datasets import make_moons

from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig

TINY = ModelConfig(hidden=[4], activation="relu", init="he")
TRAINER = TrainerConfig(optimizer="adam", lr=0.01, max_steps=30, eval_every=10)


def splits() -> Splits:
    X, y = make_moons(40, noise=0.3, random_state=0)
    return Splits(X={"train": X[:20], "dev": X[20:], "test": X[:0]},
                  y={"train": y[:20], "dev": y[20:], "test": y[:0]}, classes=np.array([0, 1]))


def test_the_bar_counts_optimizer_steps_up_to_max_steps(capsys):
    fit([Member(seed, RecipeConfig()) for seed in (0, 1)], TINY, TRAINER, splits(), progress=True)
    updates = [update for update in capsys.readouterr().out.split("\r") if update.strip()]
    counts = [tuple(int(n) for n in re.search(r"(\d+)/(\d+) \[", update).groups()) for update in updates]
    assert {total for _, total in counts} == {30}
    assert sorted({done for done, _ in counts}) == [0, 10, 20, 30]  # by eval_every, in steps
    assert all("step/s" in update for update in updates)


def test_fit_shows_no_bar_unless_asked(capsys):
    fit([Member(0, RecipeConfig())], TINY, TRAINER, splits())
    assert capsys.readouterr().out == ""
