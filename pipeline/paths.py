"""Where the stages put what they make: one place for the paths that dvc.yaml declares."""

from __future__ import annotations

from pathlib import Path


def run_name(recipe: str, seed: int) -> str:
    return f"{recipe}/seed_{seed}"


def model_dir(dataset: str, recipe: str, seed: int) -> Path:
    """The train stage's outputs: model.pt and training.json."""
    return Path("models") / dataset / run_name(recipe, seed)


def model_path(dataset: str, recipe: str, seed: int) -> Path:
    return model_dir(dataset, recipe, seed) / "model.pt"


def training_record_path(dataset: str, recipe: str, seed: int) -> Path:
    """The train stage's record: MLflow run id, steps taken, key figures."""
    return model_dir(dataset, recipe, seed) / "training.json"


def metrics_path(dataset: str, recipe: str, seed: int) -> Path:
    return Path("metrics") / dataset / f"{run_name(recipe, seed)}.json"


def figures_dir(dataset: str, recipe: str, seed: int) -> Path:
    """The evaluate stage's figures (decision boundary, confusion matrix, ...)."""
    return Path("plots") / dataset / run_name(recipe, seed)


def report_dir(dataset: str) -> Path:
    return Path("reports") / dataset
