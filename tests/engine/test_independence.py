"""A network's result does not depend on which networks share its batch, at
the scale users run: the committed params.yaml (every recipe of both default
datasets, [32, 32], Adam, full batch, 1 000 steps), in float32 and float64,
and at a path's scale of hundreds of networks.

Seed 3 trained alone, beside seed 1, and among seeds 0 to 4 ends with the
same weights, buffers, learning curves, stopping step, figures, test
metrics and Monte Carlo dropout predictions, bit for bit. (tests/engine/test_kernels.py proves the same of every
op, which is why this holds; tests/engine/test_batched.py of every technique's
variants at a smaller scale.)
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from conftest import ROOT
from pipeline.analysis.evaluation import evaluate
from pipeline.config import load_params
from pipeline.data.raw import check
from pipeline.data.splits import Splits, split
from pipeline.engine.fit import Member, fit
from pipeline.engine.network import as_tensors

PARAMS = load_params(ROOT / "params.yaml")
SEED = 3
SEEDS = (0, 1, 2, SEED, 4)
BATCHES = [(SEED,), (1, SEED), SEEDS]


@functools.cache
def splits_of(dataset: str) -> Splits:
    config = PARAMS.datasets[dataset]
    return split(check(config.source.load(), dataset), config.split)


def outcomes(members: list[Member], ks: list[int], dataset: str, precision: str) -> list[dict]:
    """Everything training and evaluation give networks ks of a batch."""
    trainer = PARAMS.trainer.model_copy(update={"precision": precision})
    splits = splits_of(dataset)
    result = fit(members, PARAMS.model, trainer, splits)
    documents, _ = evaluate(result.net, splits, PARAMS.analysis.sparsity_threshold)
    # fresh masks at test time (dropout recipes; the others' passes are all alike)
    sampled = result.net.sampled_logits(as_tensors(splits.X["test"][:1000], splits.y["test"][:1000],
                                                      result.net.dtype)[0], 3)
    return [{"state": {name: value[k].clone() for name, value in result.net.state_dict().items()},
             "curves": result.curves[k], "steps": result.steps[k], "figures": result.figures[k],
             "metrics": documents[k], "monte_carlo": sampled[:, k]} for k in ks]


def assert_identical(first: dict, second: dict, what: str) -> None:
    differing = [name for name in first["state"] if not torch.equal(first["state"][name], second["state"][name])]
    assert not differing, f"{what}: {differing} differ"
    assert torch.equal(first["monte_carlo"], second["monte_carlo"]), f"{what}: Monte Carlo dropout differs"
    for key in ("curves", "steps", "figures", "metrics"):
        assert first[key] == second[key], f"{what}: {key} differ"


class Suite:
    precision: str

    @pytest.mark.parametrize("dataset", list(PARAMS.datasets))
    def test_every_recipe_gives_seed_3_the_same_network_whatever_its_batch_mates(self, dataset):
        assert PARAMS.trainer.max_steps == 1000 and list(PARAMS.model.hidden) == [32, 32]  # the default scale
        first_weights = []
        for recipe_name, recipe in PARAMS.suite.items():
            results = [outcomes([Member(seed, recipe) for seed in seeds], [seeds.index(SEED)], dataset,
                                self.precision)[0] for seeds in BATCHES]
            for seeds, other in zip(BATCHES[1:], results[1:]):
                assert_identical(results[0], other, f"{dataset}/{recipe_name}, seed {SEED} alone and among {seeds}")
            first_weights.append(results[0]["state"]["0.weight"])
        # the recipes trained different networks, so the comparisons could fail
        assert len({w.numpy().tobytes() for w in first_weights}) == len(first_weights)


class TestFloat32(Suite):  # a class each, so that pytest-xdist runs them side by side
    precision = "32-true"


class TestFloat64(Suite):
    precision = "64-true"


class TestPathScale:
    def test_a_network_among_hundreds_is_the_network_trained_alone(self, torch_threads):
        """The l2 path at 40 strengths x 5 seeds (200 networks, tensors that
        PyTorch splits between threads) against each network alone."""
        path = PARAMS.path("l2")
        wide = sorted({*path.values, *np.geomspace(min(path.values), max(path.values), 32).tolist()})
        assert len(wide) * len(SEEDS) >= 200
        compared = [path.values[0], path.values[len(path.values) // 2], path.values[-1]]
        members = [Member(seed, path.recipe_at(v)) for v in wide for seed in SEEDS]
        places = [wide.index(v) * len(SEEDS) + SEEDS.index(SEED) for v in compared]
        batched = outcomes(members, places, "moons", "32-true")
        for value, among in zip(compared, batched):
            alone = outcomes([Member(SEED, path.recipe_at(value))], [0], "moons", "32-true")[0]
            assert_identical(alone, among, f"l2 {value:g}, seed {SEED}: alone and among {len(members)}")
        assert batched[0]["state"]["0.weight"].ne(batched[-1]["state"]["0.weight"]).any()
