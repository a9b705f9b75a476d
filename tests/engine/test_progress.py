"""fit()'s progress: one bar of optimizer steps on a terminal, although
Lightning sees one batch of eval_every steps per epoch; plain lines in a log
(the ad-hoc run); in DVC stages, lines only once training has lasted a while.
All say how long is left."""

from __future__ import annotations

import re

import numpy as np
from sklearn.datasets import make_moons

from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.engine.progress import StepLines
from pipeline.techniques import RecipeConfig

TINY = ModelConfig(hidden=[4], activation="relu", init="he")
TRAINER = TrainerConfig(optimizer="adam", lr=0.01, max_steps=30, eval_every=10)


def splits() -> Splits:
    X, y = make_moons(40, noise=0.3, random_state=0)
    return Splits(X={"train": X[:20], "dev": X[20:], "test": X[:0]},
                  y={"train": y[:20], "dev": y[20:], "test": y[:0]}, classes=np.array([0, 1]))


def test_the_bar_counts_optimizer_steps_up_to_max_steps(capsys):
    fit([Member(seed, RecipeConfig()) for seed in (0, 1)], TINY, TRAINER, splits(), progress="bar")
    updates = [update for update in capsys.readouterr().out.split("\r") if update.strip()]
    counts = [tuple(int(n) for n in re.search(r"(\d+)/(\d+) \[", update).groups()) for update in updates]
    assert {total for _, total in counts} == {30}
    assert sorted({done for done, _ in counts}) == [0, 10, 20, 30]  # by eval_every, in steps
    assert all("step/s" in update for update in updates)
    assert re.search(r"30/30 \[\d\d:\d\d<\d\d:\d\d", updates[-1])  # elapsed<remaining


def test_a_log_gets_a_line_each_tenth_of_the_steps_with_the_time_left(capsys):
    fit([Member(0, RecipeConfig())], TINY, TRAINER.model_copy(update={"max_steps": 100}), splits(), progress="lines")
    lines = capsys.readouterr().out.splitlines()
    assert "\r" not in "".join(lines)
    done = [int(re.fullmatch(r"training: (\d+)/100 steps \(\d+%\), \d\d:\d\d elapsed, \d\d:\d\d left", line)
                .group(1)) for line in lines]
    assert done == list(range(10, 101, 10))  # eval_every = 10 steps: each tenth once


def test_fit_shows_no_bar_unless_asked(capsys):
    fit([Member(0, RecipeConfig())], TINY, TRAINER, splits())
    assert capsys.readouterr().out == ""


def test_a_dvc_stage_says_how_far_it_is_only_once_training_has_lasted_a_while(capsys):
    """A stage's training of a few seconds adds no lines to `dvc repro`'s
    output; one of minutes (1 000 seeds) says how far it is."""
    trainer = TRAINER.model_copy(update={"max_steps": 100})
    fit([Member(0, RecipeConfig())], TINY, trainer, splits(), progress="long")
    assert capsys.readouterr().out == ""  # milliseconds: below LONG_SECONDS
    for wait, shown in ((1e9, 0), (0.0, 10)):
        fit([Member(0, RecipeConfig())], TINY, trainer, splits(), callbacks=[StepLines(100, after_seconds=wait)])
        assert len(capsys.readouterr().out.splitlines()) == shown
