"""The schema of params.yaml (and of an ad-hoc run's composed config), and
loading it.

conf/ (Hydra) says what the values are; the schemas say what they may be.
Every stage validates the whole params.yaml before doing any work, so a typo
or an out-of-range value stops the pipeline with one line naming the key.
Datasets' and techniques' own schemas live with them, in pipeline.data and
pipeline.techniques.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, StringConstraints,
                      ValidationError, model_validator)

from pipeline.core.errors import PipelineError
from pipeline.core.schema import Name, Schema, Seed, validate
from pipeline.data.sources import DatasetConfig
from pipeline.data.surfaces import SURFACES
from pipeline.techniques import TECHNIQUES, RecipeConfig

PARAMS_FILE = Path("params.yaml")


class ModelConfig(Schema):
    hidden: list[PositiveInt]
    activation: Literal["relu", "tanh", "sigmoid", "leaky_relu", "linear"]  # linear: none, a deep linear network
    # he: N(0, 2/fan_in); xavier: N(0, 2/(fan_in+fan_out)); randn_sqrt_fan_in:
    # N(0, 1/fan_in) as in the course notebooks. Biases start at zero.
    init: Literal["he", "xavier", "randn_sqrt_fan_in"]
    # None: weights drawn by torch from each network's seed. An integer: drawn as
    # the course notebooks do, numpy.random.seed(S) then randn(fan_out, fan_in)
    # per layer in order, divided by the scheme's sqrt(fan_in)-style factor.
    numpy_init_seed: Seed | None = None


class TrainerConfig(Schema):
    optimizer: Literal["sgd", "adam"]
    lr: PositiveFloat
    max_steps: PositiveInt
    batch_size: PositiveInt | None = None  # None: full-batch gradient descent
    eval_every: PositiveInt  # steps between dev evaluations and metric logging
    precision: Literal["32-true", "64-true"] = "32-true"  # Lightning's: float32, or float64 throughout
    # Lightning's: auto is a GPU where PyTorch sees one, else the CPU; gpu stops where there is none
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    # torch.compile the objective and its backward: not bit for bit the eager step, batch independence
    # unproven, and measured no faster on a 2-core CPU (docs/speed.md); off unless asked for
    fused: bool = False


class DropoutAtTestTimeConfig(Schema):
    """Weight scaling against Monte Carlo dropout and the seeds' ensemble
    (pipeline.analysis.dropout_at_test_time), for recipes with dropout."""

    samples: int = Field(ge=2)  # T: masks per network and point for Monte Carlo dropout
    # a random subset of the test split, the same for all three: Monte Carlo costs T passes per point
    test_points: PositiveInt
    calibration_bins: int = Field(ge=2)  # equal-width confidence bins of the expected calibration error


class LossLandscapeConfig(Schema):
    """Slices of the loss around each recipe's first network (pipeline.analysis.loss_slices)."""

    points: NonNegativeInt  # grid points a side, odd: the trained network at the centre; 0: no slices
    span: PositiveFloat  # the grid reaches ±span along each filter-normalized direction
    seed: Seed  # draws the directions: the same for every recipe

    @model_validator(mode="after")
    def _odd(self):
        if self.points and self.points % 2 == 0:
            raise ValueError(f"points must be odd, so the trained network is the grid's centre (got {self.points})")
        return self


class AnalysisConfig(Schema):
    # |w| below this counts as a zero weight in the sparsity figures
    sparsity_threshold: PositiveFloat
    dropout_at_test_time: DropoutAtTestTimeConfig
    loss_landscape: LossLandscapeConfig


class ReportConfig(Schema):
    # train error above this: the model underfits (high bias)
    high_bias_error: float = Field(gt=0, lt=1)
    # dev error minus train error above this: the model overfits (high variance)
    high_variance_gap: float = Field(gt=0, lt=1)


class PathConfig(Schema):
    """A regularization path: a recipe trained once per value of one of its
    techniques' strength (the value that technique's `sweeps` names)."""

    sweep: Name  # the technique whose value varies
    recipe: RecipeConfig
    values: list[float] = Field(min_length=2)

    @model_validator(mode="after")
    def _sweeps_a_technique_of_the_recipe(self):
        technique = TECHNIQUES.get(self.sweep)
        if technique is None or technique.sweeps is None:
            sweepable = sorted(name for name, t in TECHNIQUES.items() if t.sweeps)
            raise ValueError(f"sweep must be one of {sweepable} (got {self.sweep!r})")
        if getattr(self.recipe, self.sweep) is None:
            raise ValueError(f"the recipe has no {self.sweep} to sweep (it has {self.recipe.techniques()})")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"values must differ from each other (got {self.values})")
        for value in self.values:
            self.recipe_at(value)  # each value must be valid for the technique
        return self

    def recipe_at(self, value: float) -> RecipeConfig:
        technique = TECHNIQUES[self.sweep]
        try:
            config = technique.swept(getattr(self.recipe, self.sweep), value)
        except ValueError as error:  # pydantic's, about the technique's own key
            raise ValueError(f"value {value:g} is not a valid {self.sweep}.{technique.sweeps}: "
                             f"{error.errors()[0]['msg']}") from None
        return self.recipe.model_copy(update={self.sweep: config})


class SurfaceConfig(Schema):
    """One artificial surface of the landscapes stage (pipeline.analysis.landscapes)."""

    strengths: list[NonNegativeFloat] = Field(min_length=1)  # a panel each, for each penalty
    starts: list[tuple[float, float]] = Field(min_length=1)  # where both optimizers start
    gd_lr: PositiveFloat  # gradient descent's: below 2 / the surface's largest curvature, or it diverges
    adam_lr: PositiveFloat


class LandscapesConfig(Schema):
    """The penalty landscapes: artificial surfaces with an L1 or L2 term, no data."""

    steps: PositiveInt  # of each optimizer, from each start
    penalties: list[Literal["l2", "l1"]] = Field(min_length=1)
    surfaces: dict[Literal[tuple(SURFACES)], SurfaceConfig] = Field(min_length=1)


Seeds = Annotated[list[Seed], Field(min_length=1)]


def _check_seeds(seeds: list[int]) -> None:
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must differ from each other (got {seeds})")


class PipelineConfig(Schema):
    """params.yaml: the datasets, the suite of recipes, the regularization paths,
    and what they share."""

    seeds: Seeds  # every recipe and every point of a path is trained once per seed
    datasets: dict[Name, DatasetConfig] = Field(min_length=1)
    model: ModelConfig
    trainer: TrainerConfig
    suite: dict[Name, RecipeConfig] = Field(min_length=1)
    paths: dict[Name, PathConfig] = {}
    analysis: AnalysisConfig
    report: ReportConfig
    landscapes: LandscapesConfig

    @model_validator(mode="after")
    def _recipes_fit_the_model_and_data(self):
        _check_seeds(self.seeds)
        recipes = {f"suite.{name}": recipe for name, recipe in self.suite.items()}
        recipes |= {f"paths.{name}.recipe": path.recipe for name, path in self.paths.items()}
        for dataset_name, dataset in self.datasets.items():
            for where, recipe in recipes.items():
                try:
                    recipe.check(self.model.hidden, has_dev=dataset.split.dev > 0)
                except ValueError as error:
                    raise ValueError(f"{where}.{error} (datasets.{dataset_name})") from None
        return self

    def dataset(self, name: str) -> DatasetConfig:
        if name not in self.datasets:
            raise PipelineError(f"unknown dataset {name!r}: params.yaml has {sorted(self.datasets)}")
        return self.datasets[name]

    def recipe(self, name: str) -> RecipeConfig:
        if name not in self.suite:
            raise PipelineError(f"unknown recipe {name!r}: params.yaml has {sorted(self.suite)}")
        return self.suite[name]

    def compared(self) -> list[str]:
        """The suite's recipes in the order reports compare them: the baseline (no technique) first."""
        return sorted(self.suite, key=lambda recipe: bool(self.suite[recipe].techniques()))

    def path(self, name: str) -> PathConfig:
        if name not in self.paths:
            raise PipelineError(f"unknown path {name!r}: params.yaml has {sorted(self.paths)}")
        return self.paths[name]


class AdhocConfig(Schema):
    """conf/train.yaml composed with overrides: one ad-hoc run, outside DVC."""

    seeds: Seeds
    dataset_name: Name
    dataset: DatasetConfig
    model: ModelConfig
    trainer: TrainerConfig
    recipe: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_+-]+$")]
    regularization: RecipeConfig
    analysis: AnalysisConfig

    @model_validator(mode="after")
    def _recipe_fits_the_model_and_data(self):
        _check_seeds(self.seeds)
        try:
            self.regularization.check(self.model.hidden, has_dev=self.dataset.split.dev > 0)
        except ValueError as error:
            raise ValueError(f"regularization.{error}") from None
        return self


class SearchSettings(Schema):
    """How pipeline.search looks for a strength: Optuna asks for `batch`
    trials at once, all their seeds train as one batch, and each trial's
    score is over its seeds."""

    sweep: Name  # the technique whose value is searched (its key as a path sweeps it)
    low: PositiveFloat
    high: PositiveFloat
    log: bool  # sample the value on a log scale (strengths span decades)
    trials: PositiveInt
    batch: PositiveInt  # trials trained together: Optuna's ask-and-tell, a batch at a time
    # mean: the seed mean of dev accuracy; lower: the lower end of its 95%
    # interval, which prefers a strength that is good on every seed
    score: Literal["mean", "lower"]
    sampler_seed: NonNegativeInt  # Optuna's TPE sampler: the same seed, the same trials
    # Where the Optuna study is kept (a SQLAlchemy URL); None: optuna.db beside mlflow.db
    storage: str | None = None

    @model_validator(mode="after")
    def _a_range(self):
        if self.low >= self.high:
            raise ValueError(f"low must be below high (got low {self.low:g}, high {self.high:g})")
        return self


class SearchConfig(Schema):
    """conf/search.yaml composed with overrides: a strength search, outside DVC."""

    seeds: Seeds
    dataset_name: Name
    dataset: DatasetConfig
    model: ModelConfig
    trainer: TrainerConfig
    regularization: RecipeConfig
    analysis: AnalysisConfig
    search: SearchSettings

    @model_validator(mode="after")
    def _searches_the_recipe_on_dev(self):
        _check_seeds(self.seeds)
        if self.dataset.split.dev <= 0:
            raise ValueError("dataset.split.dev must be above 0: a search scores its trials on the dev split")
        try:
            self.regularization.check(self.model.hidden, has_dev=True)
        except ValueError as error:
            raise ValueError(f"regularization.{error}") from None
        try:
            self.range()  # both ends valid values of the technique, which the recipe must have
        except ValidationError as error:
            raise ValueError(f"search: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        if self.search.score == "lower" and len(self.seeds) < 2:
            raise ValueError("search.score lower needs two seeds or more: one seed has no interval")
        return self

    def range(self) -> PathConfig:
        """The search's range as a path of two values: its recipe at any value."""
        return PathConfig(sweep=self.search.sweep, recipe=self.regularization,
                          values=[self.search.low, self.search.high])


def load_params(path: Path = PARAMS_FILE) -> PipelineConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path} not found: run from the repository root") from None
    except yaml.YAMLError as error:
        raise PipelineError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return validate(PipelineConfig, data, str(path))
