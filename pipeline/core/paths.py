"""Where the stages put what they make: one place for the paths that dvc.yaml declares."""

from __future__ import annotations

from pathlib import Path


def model_dir(dataset: str, recipe: str) -> Path:
    """The train stage's outputs: model.pt (every seed's network), training.json, history.csv,
    weights_during_training.npz, boundary_during_training/."""
    return Path("models") / dataset / recipe


def model_path(dataset: str, recipe: str) -> Path:
    return model_dir(dataset, recipe) / "model.pt"


def training_record_path(dataset: str, recipe: str) -> Path:
    """Per seed: the steps it took, its techniques' figures."""
    return model_dir(dataset, recipe) / "training.json"


def history_path(dataset: str, recipe: str) -> Path:
    """Per seed, the learning curves: train and dev loss and accuracy every eval_every steps."""
    return model_dir(dataset, recipe) / "history.csv"


def weights_path(dataset: str, recipe: str) -> Path:
    """Every seed's weight matrices at log-spaced steps of training (0, 1, 3, 10, ...)."""
    return model_dir(dataset, recipe) / "weights_during_training.npz"


def snapshots_dir(dataset: str, recipe: str) -> Path:
    """Per seed, the decision boundary as it formed (points in the plane): seed_<seed>_step_<step>.png."""
    return model_dir(dataset, recipe) / "boundary_during_training"


def metrics_path(dataset: str, recipe: str, seed: int) -> Path:
    return Path("metrics") / dataset / recipe / f"seed_{seed}.json"


def dropout_at_test_time_path(dataset: str, recipe: str) -> Path:
    """Recipes with dropout: weight scaling, Monte Carlo dropout and the seeds' ensemble, scored."""
    return Path("metrics") / dataset / recipe / "dropout_at_test_time.json"


def loss_landscape_path(dataset: str, recipe: str) -> Path:
    """The first seed's network's train and dev loss on a grid around it (filter-normalized directions)."""
    return Path("metrics") / dataset / recipe / "loss_landscape.json"


def figures_dir(dataset: str, recipe: str, seed: int) -> Path:
    """The evaluate stage's figures (decision boundary, confusion matrix, ...)."""
    return Path("plots") / dataset / recipe / f"seed_{seed}"


def report_dir(dataset: str) -> Path:
    return Path("reports") / dataset


def paths_dir(dataset: str) -> Path:
    """The path stage's outputs: per path, <path>.csv (a row per strength and seed) and <path>.png."""
    return report_dir(dataset) / "paths"


def strength_views_dir(dataset: str) -> Path:
    """The path stage's views for the report page's sliders: <path>.npz, per strength the first seed's
    weights and boundary image. Not in paths_dir, whose every file `dvc plots show` tries to draw; beside
    the recipes' models, which the report already depends on."""
    return Path("models") / dataset / "paths_by_strength"


def path_table(dataset: str, path: str) -> Path:
    return paths_dir(dataset) / f"{path}.csv"


def tracked_path(dataset: str) -> Path:
    """The track stage's note of which pipeline run went into which store (neither cached nor committed)."""
    return report_dir(dataset) / "tracked.json"


def landscapes_dir() -> Path:
    """The landscapes stage's outputs: <surface>.png per artificial surface, landscapes.json."""
    return Path("reports") / "landscapes"
