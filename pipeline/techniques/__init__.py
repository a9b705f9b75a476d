"""Regularization techniques, one module each; TECHNIQUES is the one list of them.

Adding a technique means its module here (a Technique subclass), its entry
below, its conf/regularization/<name>.yaml and its row in the README.
"""

from __future__ import annotations

from pydantic import create_model

from pipeline.core.schema import Schema
from pipeline.techniques.augmentation import Augmentation
from pipeline.techniques.base import Batch, Technique
from pipeline.techniques.batch_norm import BatchNorm
from pipeline.techniques.dropout import Dropout
from pipeline.techniques.early_stopping import EarlyStopping
from pipeline.techniques.elastic_net import ElasticNet
from pipeline.techniques.l1 import L1
from pipeline.techniques.l2 import L2
from pipeline.techniques.max_norm import MaxNorm

# In the order they act where several touch the same place: batch norm before
# dropout after an activation, penalties summed in this order.
TECHNIQUES: dict[str, type[Technique]] = {t.name: t for t in (
    L1, L2, ElasticNet, MaxNorm, BatchNorm, Dropout, EarlyStopping, Augmentation,
)}


class _Recipe(Schema):
    def techniques(self) -> list[str]:
        """The names of the techniques the recipe applies, in TECHNIQUES order."""
        return [name for name in TECHNIQUES if getattr(self, name) is not None]

    def check(self, hidden: list[int], has_dev: bool) -> None:
        for name in self.techniques():
            TECHNIQUES[name].check(getattr(self, name), hidden, has_dev)


# A recipe: each technique present is applied; none is the baseline.
RecipeConfig = create_model(
    "RecipeConfig", __base__=_Recipe, **{name: (t.Config | None, None) for name, t in TECHNIQUES.items()},
)


def build(recipes: list, batch: Batch) -> list[Technique]:
    """The techniques of K recipes that share their set of techniques, each
    acting on all K networks with its own configuration per network."""
    names = recipes[0].techniques()
    if any(recipe.techniques() != names for recipe in recipes):
        raise ValueError("networks trained together must use the same techniques")
    return [TECHNIQUES[name]([getattr(recipe, name) for recipe in recipes], batch) for name in names]


__all__ = ["TECHNIQUES", "RecipeConfig", "Technique", "Batch", "build"]
