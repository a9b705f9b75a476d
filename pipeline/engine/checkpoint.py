"""The train stage's files: the model file (K trained networks and what it
takes to rebuild them, loadable with weights_only; one network taken out of
the stack) and the learning curves."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import torch

from pipeline.config import ModelConfig
from pipeline.core.atomic import write_bytes, write_text
from pipeline.core.errors import PipelineError
from pipeline.engine.network import StackedNetwork, make_network
from pipeline.techniques import Batch, RecipeConfig


@dataclass
class Trained:
    """K trained networks (in evaluation mode), one per (seed, recipe)."""

    net: StackedNetwork
    batch: Batch
    model: ModelConfig
    recipes: list[RecipeConfig]

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.batch.seeds

    def single(self, k: int) -> StackedNetwork:
        """Network k alone, as a stack of one (for MLflow's logged model and figures)."""
        return self.subset([k])

    def with_state(self, state: dict[str, torch.Tensor]) -> StackedNetwork:
        """The same K networks with another state loaded (one the engine recorded during training)."""
        return self.subset(list(range(len(self.seeds))), state)

    def subset(self, members: list[int], state: dict[str, torch.Tensor] | None = None) -> StackedNetwork:
        """Those networks, stacked in that order, in their trained state or in
        `state` (one of the whole batch's). Their recipes must shape the
        same layers as the whole batch's (a batch has a dropout layer if any
        of its networks drops units): members of one recipe, or a selection
        that keeps every recipe of the batch."""
        batch = Batch(seeds=tuple(self.seeds[k] for k in members), n_features=self.batch.n_features,
                      hidden=self.batch.hidden, n_train=self.batch.n_train, dtype=self.batch.dtype,
                      image_shape=self.batch.image_shape)
        net, _ = make_network(batch, self.net.n_classes, self.model, [self.recipes[k] for k in members])
        chosen = torch.as_tensor(members)
        net.load_state_dict({name: value[chosen] for name, value in (self.net.state_dict() if state is None else state).items()})
        return net.eval()


def save(trained: Trained, target) -> None:
    batch = trained.batch
    checkpoint = {
        "state_dict": trained.net.state_dict(),
        "seeds": list(batch.seeds),
        "n_features": batch.n_features,
        "n_classes": trained.net.n_classes,
        "n_train": batch.n_train,
        "image_shape": list(batch.image_shape) if batch.image_shape else None,
        "dtype": str(batch.dtype).removeprefix("torch."),
        "model": trained.model.model_dump(mode="json"),
        "recipes": [recipe.model_dump(mode="json") for recipe in trained.recipes],
    }
    # Saved through memory: torch.save writes the file's own name into the
    # archive, so a temporary file name would make identical models differ.
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_bytes(target, buffer.getvalue())


def load(path) -> Trained:
    try:
        checkpoint = torch.load(path, weights_only=True)
        batch = Batch(seeds=tuple(checkpoint["seeds"]), n_features=checkpoint["n_features"],
                      hidden=tuple(checkpoint["model"]["hidden"]), n_train=checkpoint["n_train"],
                      dtype=getattr(torch, checkpoint["dtype"]),
                      image_shape=tuple(checkpoint["image_shape"]) if checkpoint["image_shape"] else None)
        model = ModelConfig.model_validate(checkpoint["model"])
        recipes = [RecipeConfig.model_validate(recipe) for recipe in checkpoint["recipes"]]
        net, _ = make_network(batch, checkpoint["n_classes"], model, recipes)
        net.load_state_dict(checkpoint["state_dict"])
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing: run the train stage (dvc repro)") from None
    except Exception as error:  # truncated file, wrong format, mismatched weights
        raise PipelineError(f"{path} is not a loadable model ({type(error).__name__}): rerun the train stage") from None
    return Trained(net.eval(), batch, model, recipes)


def save_curves(target, seeds: list[int], curves: list[list[dict[str, float]]]) -> None:
    """Per seed, its evaluations (step, train and dev loss and accuracy) as CSV rows."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["seed", *curves[0][0]], lineterminator="\n")
    writer.writeheader()
    writer.writerows({"seed": seed, **point} for seed, curve in zip(seeds, curves) for point in curve)
    write_text(target, out.getvalue())


def load_curves(path) -> dict[int, list[dict[str, float]]]:
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing: run the train stage (dvc repro)") from None
    curves: dict[int, list[dict[str, float]]] = {}
    try:
        for row in rows:
            seed = int(row.pop("seed"))
            curves.setdefault(seed, []).append({key: (int if key == "step" else float)(value)
                                                for key, value in row.items()})
    except (KeyError, TypeError, ValueError):
        raise PipelineError(f"{path} is corrupt: rerun the train stage") from None
    return curves
