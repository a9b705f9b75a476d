"""Schema validation of params.yaml and the one-line errors the stages print."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from pydantic import ValidationError

from pipeline.config import PipelineConfig, load_params
from pipeline.core.errors import PipelineError
from pipeline.core.schema import describe, validate
from pipeline.techniques import RecipeConfig
from pipeline.techniques.dropout import DropoutConfig
from pipeline.techniques.l2 import L2Config

COMMITTED = yaml.safe_load((ROOT / "params.yaml").read_text())


def modified(change) -> dict:
    data = copy.deepcopy(COMMITTED)
    change(data)
    return data


def run_stage(cwd: Path, params_text: str, stage: str = "split") -> subprocess.CompletedProcess:
    (cwd / "params.yaml").write_text(params_text)
    return subprocess.run(
        [sys.executable, "-m", f"pipeline.stages.{stage}", "moons"],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


# --- the committed configuration ------------------------------------------


def test_committed_params_validate():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params, PipelineConfig)
    assert sorted(params.datasets) == ["circles", "moons"]
    assert list(params.suite) == [
        "baseline", "l1", "l2", "elastic_net", "max_norm", "dropout", "batch_norm", "early_stopping",
        "augmentation", "dropout_max_norm", "dropout_l2",
    ]
    assert params.suite["dropout_max_norm"].techniques() == ["max_norm", "dropout"]
    assert params.seeds == [0, 1, 2, 3, 4, 5, 6, 7]
    assert list(params.paths) == ["l2", "l1", "max_norm", "dropout", "augmentation"]
    assert all(8 <= len(path.values) <= 12 for path in params.paths.values())
    assert params.suite["l2"].techniques() == ["l2"]
    assert params.suite["baseline"].techniques() == []
    assert params.suite["dropout"].dropout.keep_prob == [0.5, 0.5]
    assert params.suite["early_stopping"].early_stopping.patience == 5


def test_committed_params_are_the_hydra_composition_of_conf(monkeypatch):
    from pipeline.params import compose

    monkeypatch.chdir(ROOT)  # compose reads conf/ relative to the working directory
    assert compose("config") == COMMITTED


def test_lookups_by_name():
    params = load_params(ROOT / "params.yaml")
    assert params.recipe("l2") == RecipeConfig(l2=L2Config(strength=1.0, regularize_bias=False))
    assert params.dataset("moons").source.n_samples == 50700
    assert params.path("dropout").recipe_at(0.3).dropout.keep_prob == [0.3, 0.3]
    with pytest.raises(PipelineError, match=r"unknown recipe 'l3': params.yaml has \['augmentation', 'baseline', "):
        params.recipe("l3")
    with pytest.raises(PipelineError, match=r"unknown dataset 'spirals'"):
        params.dataset("spirals")
    with pytest.raises(PipelineError, match=r"unknown path 'l3'"):
        params.path("l3")


# --- in-process validation and describe -----------------------------------


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda d: d["suite"]["l2"]["l2"].update(strength=-0.5),
            "params.yaml: suite.l2.l2.strength: Input should be greater than or equal to 0 (got -0.5)",
        ),
        (
            lambda d: d["suite"]["dropout"]["dropout"].update(keep_prob=[0.8, 1.5]),
            "params.yaml: suite.dropout.dropout.keep_prob.1: Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            lambda d: d["datasets"]["moons"]["source"].update(n_samples=0),
            "params.yaml: datasets.moons.source.n_samples: Input should be greater than 0 (got 0)",
        ),
        (
            lambda d: d["trainer"].update(optimizer="rmsprop"),
            "params.yaml: trainer.optimizer: Input should be 'sgd' or 'adam' (got 'rmsprop')",
        ),
        (
            lambda d: d["suite"]["l2"].update(l2={"strenght": 1.0, "regularize_bias": False}),
            "params.yaml: suite.l2.l2.strength: required key is missing",
        ),
        (
            lambda d: d["datasets"].update(football={
                "source": {"kind": "mat_download", "urls": ["ftp://example.org/data.mat"], "sha256": "0" * 64},
                "split": {"dev": 0.25, "test": 0.0, "seed": 0},
            }),
            # the discriminator tag ("mat_download") is dropped from the key path
            "params.yaml: datasets.football.source.urls.0: String should match pattern "
            "'^(https?|file)://' (got 'ftp://example.org/data.mat')",
        ),
        (
            lambda d: d["datasets"].update(football={
                "source": {"kind": "mat_download", "urls": ["https://example.org/data.mat"], "sha256": "0" * 64},
                "split": {"dev": 0.25, "test": 0.25, "seed": 0},
            }),
            "params.yaml: datasets.football: split.test must be 0: this dataset ships its own test set",
        ),
        (
            lambda d: d["datasets"]["moons"]["split"].update(dev=0.0),
            "params.yaml: suite.early_stopping.early_stopping needs a dev set, but split.dev is 0 (datasets.moons)",
        ),
    ],
    ids=["l2-negative", "keep-prob-above-1", "n-samples-0", "optimizer", "typo-missing", "url-scheme",
         "shipped-test-set", "early-stopping-without-dev"],
)
def test_validate_reports_first_problem_in_one_line(change, expected):
    with pytest.raises(PipelineError) as caught:
        validate(PipelineConfig, modified(change), "params.yaml")
    assert str(caught.value) == expected


def test_describe_names_the_key_path_of_a_validation_error():
    with pytest.raises(ValidationError) as caught:
        DropoutConfig(keep_prob=[0.5, 0.0])
    assert describe(caught.value) == "keep_prob.1: Input should be greater than 0 (got 0.0)"
    with pytest.raises(ValidationError) as caught:
        L2Config(strength=1.0, strenght=2.0)
    assert describe(caught.value) == "strenght: unknown key"
    with pytest.raises(ValidationError) as caught:
        RecipeConfig.model_validate({"l2": {}})
    assert describe(caught.value) == "l2.strength: required key is missing"


def test_valid_edit_is_accepted():
    params = validate(PipelineConfig, modified(lambda d: d["suite"]["l2"]["l2"].update(strength=0.0)), "x")
    assert params.suite["l2"].l2.strength == 0.0


def test_shipped_football_dataset_fits_the_default_suite():
    football = yaml.safe_load((ROOT / "conf/dataset/football.yaml").read_text())
    validate(PipelineConfig, modified(lambda d: d["datasets"].update(football=football)), "params.yaml")


# --- the stages' one-line errors (real subprocesses) ----------------------


@pytest.mark.parametrize(
    "change, key_path, detail",
    [
        (lambda d: d["suite"]["l2"]["l2"].update(strength=-1.0), "suite.l2.l2.strength",
         "Input should be greater than or equal to 0 (got -1.0)"),
        (lambda d: d["suite"]["dropout"]["dropout"].update(keep_prob=[0, 0.8]), "suite.dropout.dropout.keep_prob",
         "Input should be greater than 0 (got 0)"),
        (lambda d: d["suite"]["dropout"]["dropout"].update(keep_prob=[0.8, 1.5]), "suite.dropout.dropout.keep_prob",
         "Input should be less than or equal to 1 (got 1.5)"),
        (lambda d: d["suite"]["dropout"]["dropout"].update(keep_prob=[0.8, 0.8, 0.8]),
         "suite.dropout.dropout.keep_prob", "has 3 values but model.hidden has 2 layers"),
        (lambda d: d["suite"]["early_stopping"]["early_stopping"].update(patience=0),
         "suite.early_stopping.early_stopping.patience", "Input should be greater than or equal to 1 (got 0)"),
        (lambda d: d["suite"]["l2"]["l2"].update(strenght=1.0), "suite.l2.l2.strenght", "unknown key"),
        (lambda d: d["datasets"]["moons"]["source"].update(kind="spirals"), "datasets.moons.source",
         "Input tag 'spirals' found using 'kind' does not match any of the expected tags"),
        (lambda d: d["datasets"]["moons"]["split"].update(dev=0.5, test=0.5), "datasets.moons.split",
         "dev + test must be below 1, or nothing is left to train on"),
    ],
    ids=["l2-negative", "keep-prob-0", "keep-prob-1.5", "keep-prob-length", "patience-0", "unknown-key",
         "unknown-kind", "dev-plus-test"],
)
def test_split_stage_rejects_bad_value_in_one_line(tmp_path, change, key_path, detail):
    line = one_error_line(run_stage(tmp_path, yaml.safe_dump(modified(change), sort_keys=False)))
    assert line.startswith(f"error: params.yaml: {key_path}")
    assert detail in line
    # validation runs before any work: nothing was read or written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_fetch_stage_rejects_invalid_yaml_in_one_line(tmp_path):
    line = one_error_line(run_stage(tmp_path, "seed: 0\ndatasets: [moons\n", stage="fetch"))
    assert line.startswith("error: params.yaml is not valid YAML: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["suite"]["l1"]["l1"].update(strength=-0.1),
     "suite.l1.l1.strength: Input should be greater than or equal to 0 (got -0.1)"),
    (lambda d: d["suite"]["elastic_net"]["elastic_net"].update(l2_strength=-1),
     "suite.elastic_net.elastic_net.l2_strength: Input should be greater than or equal to 0 (got -1)"),
    (lambda d: d["suite"]["max_norm"]["max_norm"].update(c=0),
     "suite.max_norm.max_norm.c: Input should be greater than 0 (got 0)"),
    (lambda d: d["suite"]["dropout"]["dropout"].update(input_keep_prob=0),
     "suite.dropout.dropout.input_keep_prob: Input should be greater than 0 (got 0)"),
    (lambda d: d["suite"]["dropout"]["dropout"].update(mask="sometimes"),
     "suite.dropout.dropout.mask: Input should be 'fresh' or 'fixed' (got 'sometimes')"),
    (lambda d: d["suite"]["l1"]["l1"].update(per_layer=[1.0, 2.0]),
     "suite.l1.l1.per_layer has 2 values but the network has 3 weight matrices"),
    (lambda d: d["suite"]["l2"]["l2"].update(per_layer=[1.0, -2.0, 0.0]),
     "suite.l2.l2.per_layer.1: Input should be greater than or equal to 0 (got -2.0)"),
    (lambda d: d["suite"]["batch_norm"]["batch_norm"].update(momentum=0),
     "suite.batch_norm.batch_norm.momentum: Input should be greater than 0 (got 0)"),
    (lambda d: d["suite"]["augmentation"]["augmentation"].update(jitter_std=-0.1),
     "suite.augmentation.augmentation.jitter_std: Input should be greater than or equal to 0 (got -0.1)"),
    (lambda d: d["suite"]["l2"].update(weight_decay={"strength": 1}), "suite.l2.weight_decay: unknown key"),
])
def test_regularizer_values_are_checked_before_training(change, expected):
    with pytest.raises(PipelineError) as caught:
        validate(PipelineConfig, modified(change), "params.yaml")
    message = str(caught.value)
    assert message.startswith("params.yaml: ") and "\n" not in message
    assert expected in message, message


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["paths"]["l2"].update(sweep="l3"),
     "paths.l2: sweep must be one of ['augmentation', 'dropout', 'l1', 'l2', 'max_norm'] (got 'l3')"),
    (lambda d: d["paths"]["l2"].update(sweep="l1"), "paths.l2: the recipe has no l1 to sweep"),
    (lambda d: d["paths"]["l2"].update(values=[1, 1]), "values must differ from each other (got [1.0, 1.0])"),
    (lambda d: d["paths"]["l2"].update(values=[0.1, -1]),
     "value -1 is not a valid l2.strength: Input should be greater than or equal to 0"),
    (lambda d: d["paths"]["dropout"].update(values=[0.5, 1.5]),
     "value 1.5 is not a valid dropout.keep_prob: Input should be less than or equal to 1"),
    (lambda d: d["paths"]["l2"].update(values=[1]), "paths.l2.values: List should have at least 2 items"),
    (lambda d: d["paths"]["l2"]["recipe"]["l2"].update(strenght=1), "paths.l2.recipe.l2.strenght: unknown key"),
    (lambda d: d.update(seeds=[0, 1, 1]), "seeds must differ from each other (got [0, 1, 1])"),
    (lambda d: d.update(seeds=[-1]), "seeds.0: Input should be greater than or equal to 0 (got -1)"),
    # numpy's RandomState takes seeds below 2^32: larger ones passed validation, then crashed in training
    (lambda d: d["model"].update(numpy_init_seed=2**32),
     "model.numpy_init_seed: Input should be less than 4294967296 (got 4294967296)"),
    (lambda d: d.update(seeds=[0, 2**32]), "seeds.1: Input should be less than 4294967296 (got 4294967296)"),
    (lambda d: d["datasets"]["moons"]["split"].update(seed=2**40),
     "datasets.moons.split.seed: Input should be less than 4294967296"),
    (lambda d: d["datasets"]["moons"]["source"].update(seed=2**32), "datasets.moons.source.seed: Input should be less"),
    (lambda d: d["suite"]["dropout"]["dropout"].update(fixed_seed=2**32), "suite.dropout.dropout.fixed_seed: Input"),
    (lambda d: d["datasets"]["moons"]["split"].update(dev=2.5),
     "datasets.moons.split.dev: must be a share below 1 or a whole number of examples (got 2.5)"),
])
def test_paths_seeds_and_split_sizes_are_checked_before_any_work(change, expected):
    with pytest.raises(PipelineError) as caught:
        validate(PipelineConfig, modified(change), "params.yaml")
    message = str(caught.value)
    assert message.startswith("params.yaml: ") and "\n" not in message
    assert expected in message, message


def test_every_technique_is_a_key_of_recipes_and_has_its_conf_file():
    from pipeline.techniques import TECHNIQUES

    assert list(RecipeConfig.model_fields) == list(TECHNIQUES)
    for name in TECHNIQUES:
        conf = yaml.safe_load((ROOT / f"conf/regularization/{name}.yaml").read_text())
        RecipeConfig.model_validate(conf)  # the shipped defaults are valid
        # its row in the table of techniques (docs/recipes.md)
        assert f"| {name.replace('_', ' ')}" in (ROOT / "docs/recipes.md").read_text().lower().replace("-", " ")


def test_dvc_sends_no_usage_analytics_from_the_project():
    """DVC reports usage to its makers unless told not to: the project's own
    .dvc/config (which every clone gets) tells it not to."""
    result = subprocess.run([str(Path(sys.executable).parent / "dvc"), "config", "core.analytics"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "false"
