"""Early stopping per network: each of a batch ends exactly where Lightning's
own EarlyStopping callback, plus a copy of the best weights put back at the
end, leaves the same network trained alone."""

from __future__ import annotations

import copy

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping as LightningEarlyStopping
from sklearn.datasets import make_moons

from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig

WIDE = ModelConfig(hidden=[64, 64], activation="relu", init="he")
TRAINER = TrainerConfig(optimizer="adam", lr=0.01, max_steps=600, eval_every=10)
SEEDS = [0, 1, 2, 3]


def overfitting_splits() -> Splits:
    """Few noisy training points and a wide network: dev loss falls, then rises."""
    X, y = make_moons(32 + 192, noise=0.4, random_state=1)
    return Splits(X={"train": X[:32], "dev": X[32:], "test": X[:0]},
                  y={"train": y[:32], "dev": y[32:], "test": y[:0]}, classes=np.array([0, 1]))


class Publish(pl.Callback):
    """Hands the engine's dev loss of its one network to Lightning's callbacks."""

    def on_validation_end(self, trainer, module):
        trainer.callback_metrics["dev_loss"] = module.history[-1][1]["dev_loss"][0]


class RestoreBest(pl.Callback):
    """After Lightning's EarlyStopping has judged an evaluation, keep the
    weights if it counted as the best so far; put the best back at the end."""

    def __init__(self, stopper: LightningEarlyStopping):
        self.stopper, self.best_state, self.best_step = stopper, None, None

    def on_validation_end(self, trainer, module):
        if self.stopper.wait_count == 0:
            self.best_state, self.best_step = copy.deepcopy(module.net.state_dict()), module.steps

    def on_fit_end(self, trainer, module):
        module.net.load_state_dict(self.best_state)


def lightning_alone(seed: int, patience: int, splits: Splits):
    stopper = LightningEarlyStopping(monitor="dev_loss", mode="min", patience=patience, check_on_train_epoch_end=False)
    restore = RestoreBest(stopper)
    result = fit([Member(seed, RecipeConfig())], WIDE, TRAINER, splits, callbacks=[Publish(), stopper, restore])
    return result, restore.best_step


def test_each_network_stops_where_lightnings_early_stopping_stops_it_alone():
    splits, patience = overfitting_splits(), 3
    recipe = RecipeConfig.model_validate({"early_stopping": {"patience": patience}})
    batch = fit([Member(seed, recipe) for seed in SEEDS], WIDE, TRAINER, splits)
    stops = []
    for k, seed in enumerate(SEEDS):
        alone, best_step = lightning_alone(seed, patience, splits)
        assert batch.figures[k]["best_step"] == best_step
        assert batch.figures[k]["stopped_step"] == batch.steps[k] == alone.steps[0]
        ours = {name: value[k] for name, value in batch.net.state_dict().items()}
        theirs = {name: value[0] for name, value in alone.net.state_dict().items()}
        for name in ours:
            torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=1e-6, msg=name)
        stops.append(batch.steps[k])
    # the networks stopped at their own steps, early, and so were frozen while others went on
    assert len(set(stops)) > 1 and max(stops) < TRAINER.max_steps, stops


def test_a_stopped_network_keeps_its_best_weights_and_its_curve_ends_at_its_stop():
    splits = overfitting_splits()
    recipe = RecipeConfig.model_validate({"early_stopping": {"patience": 2}})
    result = fit([Member(seed, recipe) for seed in SEEDS], WIDE, TRAINER, splits)
    for k in range(len(SEEDS)):
        curve, best = result.curves[k], result.figures[k]["best_step"]
        assert curve[-1]["step"] == result.steps[k]
        evaluated = {point["step"]: point["dev_loss"] for point in curve if point["step"] > 0}
        assert min(evaluated, key=evaluated.get) == best  # the best evaluation is the one kept
        assert evaluated[result.steps[k]] > evaluated[best]  # and the last was worse: restoring mattered
        # the returned network measures what the best evaluation measured
        one = {name: value[k:k + 1] for name, value in result.net.state_dict().items()}
        alone = fit([Member(SEEDS[k], RecipeConfig())], WIDE, TRAINER.model_copy(update={"max_steps": 10}), splits)
        alone.net.load_state_dict(one)
        dev = alone.net.measure(torch.as_tensor(splits.X["dev"], dtype=torch.float32), torch.as_tensor(splits.y["dev"]))
        assert dev["loss"][0].item() == evaluated[best]
