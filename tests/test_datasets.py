"""The offline 2-D loaders (shapes, dtypes, class counts, determinism by seed),
the split, and multi-class data end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.config import DatasetConfig, load_params
from pipeline.datasets import materialize
from pipeline.evaluate import measure, per_class, predict
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
    run = params.run("moons", "baseline", 0).model_copy(update={"dataset": config, "dataset_name": "spiral"})
    run = run.model_copy(update={"trainer": run.trainer.model_copy(update={"max_steps": 300})})
    splits = split(materialize(config.source), config.split)
    net = fit(run, splits).net
    assert net[-1].out_features == 3  # softmax over three logits
    metrics = measure(net, splits)
    assert metrics["test"]["accuracy"] > 0.6  # chance is 1/3
    classes = per_class(splits.y["test"], predict(net, splits.X["test"]), splits.classes)
    assert sorted(classes) == ["0", "1", "2"]
    assert sum(c["support"] for c in classes.values()) == 150
    recall = np.average([c["recall"] for c in classes.values()], weights=[c["support"] for c in classes.values()])
    assert recall == pytest.approx(metrics["test"]["accuracy"])  # support-weighted recall is accuracy
    decision_boundary(tmp_path / "boundary.png", net, splits, "spiral", metrics)
    assert (tmp_path / "boundary.png").read_bytes()[:4] == b"\x89PNG"


# --- image data sets (offline) ---------------------------------------------------

IMAGE_DATASETS = {"digits": (1797, (8, 8)), "mnist5k": (5000, (28, 28))}


@pytest.mark.parametrize("name", sorted(IMAGE_DATASETS))
def test_image_loaders_shapes_dtypes_and_classes(name):
    n, shape = IMAGE_DATASETS[name]
    raw = materialize(dataset(name).source)
    assert raw.X.shape == (n, shape[0] * shape[1]) and raw.X.dtype == np.float32
    assert raw.image_shape == shape
    assert raw.X.min() == 0.0 and raw.X.max() == 1.0  # pixels scaled to [0, 1]
    assert raw.y.dtype == np.int64 and sorted(np.unique(raw.y)) == list(range(10))
    assert np.bincount(raw.y).min() >= 170  # every digit well represented
    again = materialize(dataset(name).source)
    assert np.array_equal(raw.X, again.X) and np.array_equal(raw.y, again.y)


def test_mnist5k_is_balanced_and_split_keeps_the_image_shape():
    config = dataset("mnist5k")
    raw = materialize(config.source)
    assert np.bincount(raw.y).tolist() == [500] * 10
    splits = split(raw, config.split)
    assert {part: len(y) for part, y in splits.y.items()} == {"train": 3000, "dev": 500, "test": 1500}
    assert splits.image_shape == (28, 28)
    assert np.bincount(splits.y["test"]).tolist() == [150] * 10  # stratified


def test_digits_train_with_image_augmentation_and_draw_image_figures(tmp_path):
    from pipeline.config import AugmentationConfig, RecipeConfig
    from pipeline.evaluate import draw_figures

    config = dataset("digits")
    params = load_params(ROOT / "params.yaml")
    run = params.run("moons", "baseline", 0).model_copy(update={
        "dataset": config, "dataset_name": "digits",
        "regularization": RecipeConfig(augmentation=AugmentationConfig(max_shift=1, max_rotation=10)),
    })
    run = run.model_copy(update={"trainer": run.trainer.model_copy(update={"max_steps": 150})})
    splits = split(materialize(config.source), config.split)
    net = fit(run, splits).net
    metrics = measure(net, splits)
    assert metrics["test"]["accuracy"] > 0.8  # chance is 0.1
    y_pred = predict(net, splits.X["test"])
    assert (y_pred != splits.y["test"]).any()  # something to show in the misclassified grid
    history = {"train_loss": [(0, 2.3), (150, 0.3)], "dev_loss": [(0, 2.3), (150, 0.4)]}
    draw_figures(tmp_path, net, splits, "augmentation", metrics, y_pred, history)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "confusion_matrix.png", "first_layer_weights.png", "learning_curves.png", "misclassified.png",
        "weight_histogram.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in tmp_path.iterdir())
