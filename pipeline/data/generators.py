"""Offline 2-D toy data sets: each source kind is its schema and how it makes
its points, a pure function of its config (and so of its seed)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from pipeline.core.schema import Seed
from pipeline.data.raw import Raw, SourceConfig


class MoonsSource(SourceConfig):
    """scikit-learn's make_moons: two interleaving half circles."""

    kind: Literal["moons"]
    n_samples: PositiveInt
    noise: NonNegativeFloat
    seed: Seed

    def load(self) -> Raw:
        from sklearn.datasets import make_moons

        return Raw(*make_moons(n_samples=self.n_samples, noise=self.noise, random_state=self.seed))


class CirclesSource(SourceConfig):
    """scikit-learn's make_circles: a small circle inside a large one."""

    kind: Literal["circles"]
    n_samples: PositiveInt
    noise: NonNegativeFloat
    factor: float = Field(gt=0, lt=1)
    seed: Seed

    def load(self) -> Raw:
        from sklearn.datasets import make_circles

        return Raw(*make_circles(n_samples=self.n_samples, noise=self.noise, factor=self.factor,
                                 random_state=self.seed))


class XorSource(SourceConfig):
    """Points uniform in [-1, 1]^2, class 1 where x and y have the same sign;
    Gaussian noise of std `noise` moves them after labelling."""

    kind: Literal["xor"]
    n_samples: PositiveInt
    noise: NonNegativeFloat
    seed: Seed

    def load(self) -> Raw:
        rng = np.random.default_rng(self.seed)
        X = rng.uniform(-1, 1, size=(self.n_samples, 2))
        y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
        return Raw(X + rng.normal(0, self.noise, size=X.shape), y)


class SpiralSource(SourceConfig):
    """n_classes interleaved spiral arms (the CS231n toy problem); `noise` is
    the std of the angle jitter, in radians."""

    kind: Literal["spiral"]
    n_samples: PositiveInt
    n_classes: int = Field(ge=2, le=10)
    noise: NonNegativeFloat
    seed: Seed

    def load(self) -> Raw:
        rng = np.random.default_rng(self.seed)
        k = self.n_classes
        labels = np.arange(self.n_samples) % k  # classes as equal as n_samples allows
        radius = rng.uniform(0.05, 1, size=self.n_samples)
        angle = labels * 2 * np.pi / k + radius * 4 + rng.normal(0, self.noise, size=self.n_samples)
        return Raw(np.c_[radius * np.sin(angle), radius * np.cos(angle)], labels.astype(np.int64))


class GaussiansSource(SourceConfig):
    """Two Gaussian blobs (scikit-learn make_blobs) whose centres lie
    `separation` apart, each with standard deviation `std`."""

    kind: Literal["gaussians"]
    n_samples: PositiveInt
    separation: PositiveFloat
    std: PositiveFloat
    seed: Seed

    def load(self) -> Raw:
        from sklearn.datasets import make_blobs

        half = self.separation / 2
        return Raw(*make_blobs(n_samples=self.n_samples, centers=[[-half, 0], [half, 0]], cluster_std=self.std,
                               random_state=self.seed))


class LinearSource(SourceConfig):
    """Linearly separable classes (scikit-learn make_classification, one
    cluster per class) with a share `label_noise` of labels assigned at random."""

    kind: Literal["linear"]
    n_samples: PositiveInt
    label_noise: float = Field(ge=0, lt=1)
    seed: Seed

    def load(self) -> Raw:
        from sklearn.datasets import make_classification

        return Raw(*make_classification(n_samples=self.n_samples, n_features=2, n_informative=2, n_redundant=0,
                                        n_clusters_per_class=1, flip_y=self.label_noise, random_state=self.seed))


GENERATED = [MoonsSource, CirclesSource, XorSource, SpiralSource, GaussiansSource, LinearSource]
