"""The offline 2-D loaders (shapes, dtypes, class counts, determinism by seed),
the split, and multi-class data end to end."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import ROOT

from pipeline.analysis import figures
from pipeline.analysis.evaluation import evaluate
from pipeline.config import load_params
from pipeline.data.sources import DatasetConfig
from pipeline.data.splits import split
from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig

pytestmark = pytest.mark.filterwarnings("ignore:.*treespec, LeafSpec")

EXPECTED_CLASSES = {"moons": 2, "circles": 2, "xor": 2, "spiral": 3, "gaussians": 2, "linear": 2}


def dataset(name: str, **source) -> DatasetConfig:
    data = yaml.safe_load((ROOT / f"conf/dataset/{name}.yaml").read_text())
    data["source"].update(source)
    return DatasetConfig.model_validate(data)


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_generator_shapes_dtypes_and_classes(name):
    config = dataset(name)
    raw = config.source.load()
    assert raw.X.shape == (config.source.n_samples, 2) and raw.X.dtype == np.float64
    assert raw.y.shape == (config.source.n_samples,) and np.issubdtype(raw.y.dtype, np.integer)
    counts = np.bincount(raw.y)
    assert len(counts) == EXPECTED_CLASSES[name]
    assert counts.min() >= 0.4 * config.source.n_samples / len(counts)  # no class starved
    assert np.isfinite(raw.X).all() and raw.X_test is None


@pytest.mark.parametrize("name", sorted(EXPECTED_CLASSES))
def test_generators_are_deterministic_by_seed(name):
    first, again = dataset(name).source.load(), dataset(name).source.load()
    other = dataset(name, seed=1).source.load()
    assert np.array_equal(first.X, again.X) and np.array_equal(first.y, again.y)
    assert not np.array_equal(first.X, other.X)


def test_spiral_class_count_follows_the_config():
    raw = dataset("spiral", n_classes=5, n_samples=500).source.load()
    assert np.bincount(raw.y).tolist() == [100] * 5


def test_split_is_stratified_and_disjoint():
    config = dataset("spiral")
    raw = config.source.load()
    splits = split(raw, config.split)
    sizes = {part: len(splits.y[part]) for part in splits.y}
    assert sizes == {"train": 300, "dev": 150, "test": 150}
    for part in sizes:
        assert np.bincount(splits.y[part]).tolist() == [sizes[part] // 3] * 3
    rows = np.concatenate([splits.X[part] for part in sizes])
    assert len(np.unique(rows, axis=0)) == len(raw.X)  # every point in exactly one split


def trained(splits, recipe: RecipeConfig = RecipeConfig(), steps: int = 300, seeds=(0,)):
    params = load_params(ROOT / "params.yaml")
    trainer = params.trainer.model_copy(update={"max_steps": steps})
    return fit([Member(seed, recipe) for seed in seeds], params.model, trainer, splits).net


def test_three_classes_end_to_end(tmp_path):
    config = dataset("spiral")
    splits = split(config.source.load(), config.split)
    net = trained(splits, seeds=(0, 1))
    assert net.linear_layers()[-1].weight.shape[-1] == 3  # softmax over three logits
    documents, y_pred = evaluate(net, splits, 0.01)
    for document in documents:
        assert document["test"]["accuracy"] > 0.6  # chance is 1/3
        classes = document["per_class"]
        assert sorted(classes) == ["0", "1", "2"]
        assert sum(c["support"] for c in classes.values()) == 150
        recall = np.average([c["recall"] for c in classes.values()], weights=[c["support"] for c in classes.values()])
        assert recall == pytest.approx(document["test"]["accuracy"])  # support-weighted recall is accuracy
    grid = figures.plane(splits)
    figures.decision_boundary(tmp_path / "boundary.png", figures.probabilities(net, *grid)[1], grid, splits, "spiral",
                              documents[1], y_pred[1])
    assert (tmp_path / "boundary.png").read_bytes()[:4] == b"\x89PNG"


# --- image data sets (offline) ---------------------------------------------------

IMAGE_DATASETS = {"digits": (1797, (8, 8)), "mnist5k": (5000, (28, 28))}


@pytest.mark.parametrize("name", sorted(IMAGE_DATASETS))
def test_image_loaders_shapes_dtypes_and_classes(name):
    n, shape = IMAGE_DATASETS[name]
    raw = dataset(name).source.load()
    assert raw.X.shape == (n, shape[0] * shape[1]) and raw.X.dtype == np.float32
    assert raw.image_shape == shape
    assert raw.X.min() == 0.0 and raw.X.max() == 1.0  # pixels scaled to [0, 1]
    assert raw.y.dtype == np.int64 and sorted(np.unique(raw.y)) == list(range(10))
    assert np.bincount(raw.y).min() >= 170  # every digit well represented
    again = dataset(name).source.load()
    assert np.array_equal(raw.X, again.X) and np.array_equal(raw.y, again.y)


def test_mnist5k_is_balanced_and_split_keeps_the_image_shape():
    config = dataset("mnist5k")
    raw = config.source.load()
    assert np.bincount(raw.y).tolist() == [500] * 10
    splits = split(raw, config.split)
    assert {part: len(y) for part, y in splits.y.items()} == {"train": 3000, "dev": 500, "test": 1500}
    assert splits.image_shape == (28, 28)
    assert np.bincount(splits.y["test"]).tolist() == [150] * 10  # stratified


def test_digits_train_with_image_augmentation_and_draw_image_figures(tmp_path):
    config = dataset("digits")
    splits = split(config.source.load(), config.split)
    recipe = RecipeConfig.model_validate({"augmentation": {"max_shift": 1, "max_rotation": 10}})
    net = trained(splits, recipe, steps=150)
    (document,), y_pred = evaluate(net, splits, 0.01)
    assert document["test"]["accuracy"] > 0.8  # chance is 0.1
    assert (y_pred[0] != splits.y["test"]).any()  # something to show in the misclassified grid
    curve = [{"step": 0, "train_loss": 2.3, "dev_loss": 2.3}, {"step": 150, "train_loss": 0.3, "dev_loss": 0.4}]
    figures.network_figures(tmp_path, "augmentation", splits, document, curve, figures.weight_matrices(net, 0),
                            y_pred[0], None, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "confusion_matrix.png", "first_layer_weights.png", "learning_curves.png", "misclassified.png",
        "weight_histogram.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in tmp_path.iterdir())
