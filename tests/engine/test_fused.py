"""trainer.fused: the engine's objective compiled by torch.compile. It trains
the same networks as the eager step up to rounding (inductor's kernels sum
in their own order), and repeats itself bit for bit."""

from __future__ import annotations

import torch
from test_batched import DEFAULT, moons, network

from pipeline.config import TrainerConfig
from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig

# dropout's masks come from each network's own generator (dynamo runs them eagerly); L2 adds a penalty
RECIPE = RecipeConfig.model_validate({"l2": {"strength": 1.0}, "dropout": {"keep_prob": [0.8, 0.8]}})


def trained(fused: bool):
    trainer = TrainerConfig(optimizer="adam", lr=0.05, max_steps=200, eval_every=50, fused=fused)
    return fit([Member(seed, RECIPE) for seed in (0, 1, 2)], DEFAULT, trainer, moons(n_train=64, n_dev=64))


def test_the_fused_step_trains_the_eager_steps_networks_to_rounding_and_repeats_itself_bit_for_bit():
    eager, fused, again = trained(False), trained(True), trained(True)
    gaps = []
    for k in range(3):
        first, second, third = network(eager, k), network(fused, k), network(again, k)
        assert all(torch.equal(second[name], third[name]) for name in second)
        assert fused.curves[k] == again.curves[k]
        gaps.append(max((first[name] - second[name]).abs().max().item() for name in first))
        for a, b in zip(eager.curves[k], fused.curves[k]):
            assert abs(a["dev_accuracy"] - b["dev_accuracy"]) <= 1 / 64
    assert max(gaps) < 1e-5  # float32 rounding after 200 steps (measured: 3e-7)
    assert max(gaps) > 0  # what docs/speed.md says: not the eager step's bits (if this fails, say so there)
