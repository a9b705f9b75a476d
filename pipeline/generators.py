"""Offline 2-D toy data sets, each a pure function of its config (and so of its seed)."""

from __future__ import annotations

import numpy as np

from pipeline.config import CirclesSource, GaussiansSource, LinearSource, MoonsSource, SpiralSource, XorSource


def moons(source: MoonsSource) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    return make_moons(n_samples=source.n_samples, noise=source.noise, random_state=source.seed)


def circles(source: CirclesSource) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_circles

    return make_circles(n_samples=source.n_samples, noise=source.noise, factor=source.factor,
                        random_state=source.seed)


def xor(source: XorSource) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(source.seed)
    X = rng.uniform(-1, 1, size=(source.n_samples, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return X + rng.normal(0, source.noise, size=X.shape), y


def spiral(source: SpiralSource) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(source.seed)
    k = source.n_classes
    labels = np.arange(source.n_samples) % k  # classes as equal as n_samples allows
    radius = rng.uniform(0.05, 1, size=source.n_samples)
    turn = 2 * np.pi / k
    angle = labels * turn + radius * 4 + rng.normal(0, source.noise, size=source.n_samples)
    X = np.c_[radius * np.sin(angle), radius * np.cos(angle)]
    return X, labels.astype(np.int64)


def gaussians(source: GaussiansSource) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_blobs

    half = source.separation / 2
    return make_blobs(n_samples=source.n_samples, centers=[[-half, 0], [half, 0]], cluster_std=source.std,
                      random_state=source.seed)


def linear(source: LinearSource) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    return make_classification(n_samples=source.n_samples, n_features=2, n_informative=2, n_redundant=0,
                               n_clusters_per_class=1, flip_y=source.label_noise, random_state=source.seed)


GENERATORS = {"moons": moons, "circles": circles, "xor": xor, "spiral": spiral, "gaussians": gaussians,
              "linear": linear}
