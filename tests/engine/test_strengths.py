"""Regularization out of all proportion to the data is refused before the
first step, in one line naming the network and its strengths; every point
of the project's own penalty paths still trains.

(At L2 1e6 under Adam every weight went to zero, at 1e30 Adam's squared
gradient overflowed float32 and the initial weights came back untouched:
both were reported as normal runs.)"""

from __future__ import annotations

import pytest
from conftest import ROOT

from pipeline.config import PipelineConfig, load_params
from pipeline.core.errors import PipelineError
from pipeline.data.splits import split
from pipeline.engine.fit import Member, fit
from pipeline.techniques import TECHNIQUES, RecipeConfig, Technique

PARAMS = load_params(ROOT / "params.yaml")  # moons and circles: 200 training points each, Adam lr 0.02


def splits_of(params: PipelineConfig, dataset: str):
    return split(params.dataset(dataset).source.load(), params.dataset(dataset).split)


def fit_one_step(members: list[Member], params: PipelineConfig = PARAMS, dataset: str = "moons"):
    trainer = params.trainer.model_copy(update={"max_steps": 1, "eval_every": 1})
    return fit(members, params.model, trainer, splits_of(params, dataset))


def refused(recipe: dict) -> str:
    """The error a one-step fit of seed 0 on moons stops with."""
    with pytest.raises(PipelineError) as raised:
        fit_one_step([Member(0, RecipeConfig.model_validate(recipe))])
    return str(raised.value)


@pytest.mark.parametrize("recipe, ratio, strengths", [
    ({"l2": {"strength": 1e6}}, "4.3e+05", "l2.strength 1e+06"),
    ({"l2": {"strength": 1e30}}, "4.3e+29", "l2.strength 1e+30"),  # Adam's squared gradient overflows here
    ({"l2": {"strength": 0, "per_layer": [0, 1e30, 0]}, "dropout": {"keep_prob": [0.5, 0.5]}},
     "2.5e+29", "l2.per_layer [0, 1e+30, 0]"),
    ({"elastic_net": {"l1_strength": 1e6, "l2_strength": 0}},
     "1.9e+06", "elastic_net.l1_strength 1e+06, elastic_net.l2_strength 0"),
])
def test_a_penalty_that_dwarfs_the_data_loss_is_one_line_before_any_step(recipe, ratio, strengths):
    assert refused(recipe) == (f"the regularization penalty is {ratio} times the data loss at step 0 (seed 0): the "
                               f"network can only learn zero weights; lower the strengths ({strengths})")


def test_decoupled_decay_that_erases_the_weights_every_step_is_one_line_before_any_step():
    # no penalty to compare: lr 0.02 * 1e4 / 200 examples takes all of every weight each step
    assert refused({"l2": {"strength": 1e4, "mode": "decoupled"}}) == (
        "decoupled weight decay takes trainer.lr * strength / m = 1 of every weight each step (seed 0): the network "
        "can only learn zero weights; lower the strengths (l2.strength 10000) or trainer.lr")


def test_the_first_network_out_of_proportion_is_named_as_the_path_labels_it():
    members = [Member(0, RecipeConfig.model_validate({"l1": {"strength": s}}), label=f"l1.strength {s:g}, seed 0")
               for s in (30, 1e5, 1e7)]
    with pytest.raises(PipelineError) as raised:
        fit_one_step(members)
    assert str(raised.value) == (
        "the regularization penalty is 1.9e+05 times the data loss at step 0 (l1.strength 100000, seed 0): the "
        "network can only learn zero weights; lower the strengths (l1.strength 100000)")


@pytest.mark.parametrize("dataset", sorted(PARAMS.datasets))
@pytest.mark.parametrize("path", sorted(name for name, path in PARAMS.paths.items()
                                        if TECHNIQUES[path.sweep].penalty is not Technique.penalty))
def test_every_point_of_the_projects_penalty_paths_trains(dataset, path):
    # the strongest, 30, sits 160 times below the limit (pipeline.engine.strengths): L1 30 is at most 62
    # times the data loss, L2 30 16 times
    values = PARAMS.path(path).values
    members = [Member(seed, PARAMS.path(path).recipe_at(value)) for value in values for seed in PARAMS.seeds]
    assert fit_one_step(members, dataset=dataset).steps == [1] * len(members)


def test_adams_state_overflowing_is_named_instead_of_a_run_whose_weights_stopped_moving():
    splits = splits_of(PARAMS, "moons")
    for part in splits.X:  # finite loss (1e24), but gradients whose squares are beyond float32
        splits.X[part] = splits.X[part] * 1e25
    trainer = PARAMS.trainer.model_copy(update={"max_steps": 10, "eval_every": 5})
    with pytest.raises(PipelineError) as raised:
        fit([Member(0, RecipeConfig())], PARAMS.model, trainer, splits)
    assert str(raised.value) == (
        "the optimizer's state overflowed float32 by step 5 (seed 0): a gradient's square is beyond its range, so "
        "the weights stop moving; rescale the data (split.standardize) or lower the regularization strengths")
