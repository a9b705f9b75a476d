"""The model file: every seed's network saved and loaded back exactly, one
network taken out of the stack, and the same bytes for the same networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from pipeline.config import ModelConfig, TrainerConfig
from pipeline.core.errors import PipelineError
from pipeline.data.splits import Splits
from pipeline.engine import checkpoint
from pipeline.engine.checkpoint import Trained
from pipeline.engine.fit import Member, fit
from pipeline.engine.network import Probabilities
from pipeline.techniques import RecipeConfig

MODEL = ModelConfig(hidden=[8, 8], activation="relu", init="he")
RECIPE = RecipeConfig.model_validate({"batch_norm": {}, "dropout": {"keep_prob": [0.8, 0.8]}})


@pytest.fixture(scope="module")
def trained() -> Trained:
    X, y = make_moons(100, noise=0.2, random_state=0)
    splits = Splits(X={"train": X[:60], "dev": X[60:], "test": X[60:]}, y={"train": y[:60], "dev": y[60:],
                    "test": y[60:]}, classes=np.array([0, 1]))
    trainer = TrainerConfig(optimizer="adam", lr=0.05, max_steps=30, eval_every=10)
    result = fit([Member(seed, RECIPE) for seed in (0, 4, 9)], MODEL, trainer, splits)
    return Trained(result.net, result.batch, MODEL, [RECIPE] * 3)


def test_a_saved_stack_loads_back_exactly(trained, tmp_path):
    checkpoint.save(trained, tmp_path / "model.pt")
    loaded = checkpoint.load(tmp_path / "model.pt")
    assert loaded.seeds == (0, 4, 9) and loaded.recipes == [RECIPE] * 3 and not loaded.net.training
    ours, theirs = trained.net.state_dict(), loaded.net.state_dict()
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)


def test_identical_networks_make_identical_files(trained, tmp_path):
    checkpoint.save(trained, tmp_path / "a.pt")
    checkpoint.save(trained, tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_one_network_out_of_the_stack_predicts_as_it_did_inside(trained):
    x = torch.randn(20, 2)
    with torch.no_grad():
        inside = trained.net.eval().predict_proba(x)[1]
        alone = Probabilities(trained.single(1))(x)
    torch.testing.assert_close(alone, inside, rtol=0, atol=1e-6)
    assert alone.shape == (20, 2) and torch.allclose(alone.sum(1), torch.ones(20))


def test_networks_of_a_dropout_path_taken_out_together_predict_as_inside():
    """A path's batch mixes keep_prob 1 (no dropout layer of its own) with
    keep_prob 0.5: one network of each, taken out together, keeps the batch's
    layers and predicts as it did inside (the path stage draws its boundaries so)."""
    X, y = make_moons(60, noise=0.2, random_state=1)
    splits = Splits(X={"train": X[:40], "dev": X[40:], "test": X[40:]}, y={"train": y[:40], "dev": y[40:],
                    "test": y[40:]}, classes=np.array([0, 1]))
    recipes = [RecipeConfig.model_validate({"dropout": {"keep_prob": [keep, keep]}}) for keep in (1.0, 1.0, 0.5, 0.5)]
    trainer = TrainerConfig(optimizer="adam", lr=0.05, max_steps=20, eval_every=10)
    result = fit([Member(seed, recipe) for seed, recipe in zip((0, 1, 0, 1), recipes)], MODEL, trainer, splits)
    batch = Trained(result.net, result.batch, MODEL, recipes)
    x = torch.randn(30, 2)
    with torch.no_grad():
        inside = batch.net.eval().predict_proba(x)
        taken = batch.subset([0, 2]).predict_proba(x)
    assert torch.equal(taken, inside[[0, 2]])


def test_a_truncated_file_is_one_clear_error(trained, tmp_path):
    checkpoint.save(trained, tmp_path / "model.pt")
    (tmp_path / "model.pt").write_bytes((tmp_path / "model.pt").read_bytes()[:100])
    with pytest.raises(PipelineError, match="is not a loadable model"):
        checkpoint.load(tmp_path / "model.pt")
    with pytest.raises(PipelineError, match="is missing: run the train stage"):
        checkpoint.load(tmp_path / "nothing.pt")
