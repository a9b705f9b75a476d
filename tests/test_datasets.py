"""The offline 2-D loaders (shapes, dtypes, class counts, determinism by seed),
the split, and multi-class data end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.config import DatasetConfig, load_params
from pipeline.datasets import materialize
from pipeline.evaluate import measure, per_class
from pipeline.plots import decision_boundary
from pipeline.split import split
from pipeline.training import fit

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore:.*treespec, LeafSpec")

EXPECTED_CLASSES = {"moons": 2, "circles": 2, "xor": 2, "spiral": 3, "gaussians": 2, "linear": 2}


def dataset(name: str, **source) -> DatasetConfig:
    data = yaml.safe_load((ROOT / f"conf/dataset/{name}.yaml").read_text())
    data["source"].update(source)
    return DatasetConfig.model_validate(data)


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_generator_shapes_dtypes_and_classes(name):
    config = dataset(name)
    raw = materialize(config.source)
    assert raw.X.shape == (config.source.n_samples, 2) and raw.X.dtype == np.float64
    assert raw.y.shape == (config.source.n_samples,) and np.issubdtype(raw.y.dtype, np.integer)
    counts = np.bincount(raw.y)
    assert len(counts) == EXPECTED_CLASSES[name]
    assert counts.min() >= 0.4 * config.source.n_samples / len(counts)  # no class starved
    assert np.isfinite(raw.X).all() and raw.X_test is None


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_generators_are_deterministic_by_seed(name):
    first, again = materialize(dataset(name).source), materialize(dataset(name).source)
    other = materialize(dataset(name, seed=1).source)
    assert np.array_equal(first.X, again.X) and np.array_equal(first.y, again.y)
    assert not np.array_equal(first.X, other.X)


def test_spiral_class_count_follows_the_config():
    raw = materialize(dataset("spiral", n_classes=5, n_samples=500).source)
    assert np.bincount(raw.y).tolist() == [100] * 5


def test_split_is_stratified_and_disjoint():
    config = dataset("spiral")
    raw = materialize(config.source)
    splits = split(raw, config.split)
    sizes = {part: len(splits.y[part]) for part in splits.y}
    assert sizes == {"train": 300, "dev": 150, "test": 150}
    for part in sizes:
        assert np.bincount(splits.y[part]).tolist() == [sizes[part] // 3] * 3
    rows = np.concatenate([splits.X[part] for part in sizes])
    assert len(np.unique(rows, axis=0)) == len(raw.X)  # every point in exactly one split


def test_three_classes_end_to_end(tmp_path):
    config = dataset("spiral")
    params = load_params(ROOT / "params.yaml")
    run = params.run("moons", "baseline").model_copy(update={"dataset": config, "dataset_name": "spiral"})
    run = run.model_copy(update={"trainer": run.trainer.model_copy(update={"max_steps": 300})})
    splits = split(materialize(config.source), config.split)
    net = fit(run, splits).net
    assert net[-1].out_features == 3  # softmax over three logits
    metrics = measure(net, splits)
    assert metrics["test"]["accuracy"] > 0.6  # chance is 1/3
    classes = per_class(net, splits)
    assert sorted(classes) == ["0", "1", "2"]
    assert sum(c["support"] for c in classes.values()) == 150
    recall = np.average([c["recall"] for c in classes.values()], weights=[c["support"] for c in classes.values()])
    assert recall == pytest.approx(metrics["test"]["accuracy"])  # support-weighted recall is accuracy
    decision_boundary(tmp_path / "boundary.png", net, splits, "spiral", metrics)
    assert (tmp_path / "boundary.png").read_bytes()[:4] == b"\x89PNG"
