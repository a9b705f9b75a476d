"""The stored view's value: what MLflow's UI reads back (the browser test,
tests/ui, shows that it does), within MLflow's limit at the suite's scale."""

from __future__ import annotations

import base64
import json
import zlib

from pipeline.analysis.weights import STATISTICS
from pipeline.analysis.weights_over_training import FIGURES
from pipeline.tracking.views import (BOUNDARY, COMPRESSED, LANDSCAPE, TAG_LIMIT, comparison_view, deserialized, serialized,
                                     view_link)

RECIPES = ["baseline", "l1", "l2", "elastic_net", "max_norm", "dropout", "batch_norm", "early_stopping",
           "augmentation", "dropout_max_norm", "dropout_l2"]
PATHS = ["l2", "l1", "max_norm", "dropout", "augmentation"]
SURFACES = ["bowl", "himmelblau", "rastrigin"]
RUN_IDS = [f"{k:032x}" for k in range(len(RECIPES) + 1)]


def test_the_value_is_deflated_json_as_the_ui_writes_it_and_fits_mlflows_limit():
    view = comparison_view(RUN_IDS, RECIPES, PATHS, seed=0, seeds=8, weight_figures=FIGURES, weight_statistics=STATISTICS,
                           landscapes=SURFACES, loss_landscapes="loss_landscapes", dropout="dropout_at_test_time")
    value = serialized(view)
    assert value.startswith(COMPRESSED) and len(value) < TAG_LIMIT
    assert json.loads(zlib.decompress(base64.b64decode(value[len(COMPRESSED):]))) == view  # zlib, as pako inflates
    assert deserialized(value) == view and deserialized(json.dumps(view)) == view  # the UI reads both forms


def test_the_view_searches_its_runs_and_draws_one_card_per_recipe_and_path():
    view = comparison_view(RUN_IDS, RECIPES, PATHS, seed=3, seeds=8, weight_figures=FIGURES,
                           weight_statistics=STATISTICS, landscapes=SURFACES, loss_landscapes="loss_landscapes",
                           dropout="dropout_at_test_time")
    assert view["searchFilter"] == "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in RUN_IDS) + ")"
    assert (view["orderByKey"], view["orderByAsc"]) == ("tags.`kind`", True)  # "pipeline" before "recipe"
    cards = view["compareRunCharts"]
    assert [c["imageKeys"] for c in cards if c["type"] == "IMAGE"] == [[f"{BOUNDARY}/{r}"] for r in RECIPES] + [
        [key] for key in FIGURES] + [["loss_landscapes"], ["dropout_at_test_time"]] + [
        [f"{LANDSCAPE}/{surface}"] for surface in SURFACES]
    assert all(c["step"] == 0 and c["showRunParams"] is False for c in cards if c["type"] == "IMAGE")
    lines = [c for c in cards if c["type"] == "LINE"]
    assert [c["selectedXAxisMetricKey"] for c in lines][:len(PATHS)] == [f"path/{p}/log10_strength" for p in PATHS]
    weights = lines[len(PATHS):-2]  # a line per recipe run: its mean over seeds against the (log) step
    assert [c["metricKey"] for c in weights] == [f"curve/{name}_mean" for name in STATISTICS]
    dropout = lines[-2:]  # a line per dropout recipe: Monte Carlo's score against T, the step
    assert [c["metricKey"] for c in dropout] == ["dropout/monte_carlo_nll_mean", "dropout/monte_carlo_ece_mean"]
    assert all(c["xAxisKey"] == "step" and c["xAxisScaleType"] == "log" for c in weights + dropout)
    assert all(c["runsCountToCompare"] >= len(RUN_IDS) for c in cards)
    assert {c["metricSectionId"] for c in cards} == {s["uuid"] for s in view["compareRunSections"]}
    assert view["selectedColumns"][:4] == ["tags.`verdict`", "metrics.`test_accuracy_mean`",
                                           "metrics.`test_accuracy_ci95_low`", "metrics.`test_accuracy_ci95_high`"]
    assert view["columnOrder"][1:5] == view["selectedColumns"][:4]


def test_a_section_shows_only_with_cards_to_hold():
    view = comparison_view(RUN_IDS, RECIPES, PATHS, seed=0, seeds=8)
    assert [s["name"] for s in view["compareRunSections"]] == ["Decision boundaries", "Test accuracy over seeds",
                                                               "Regularization paths"]


def test_the_link_names_the_view_and_opens_the_model_training_layout():
    assert view_link("7", "abc") == ("#/experiments/7/runs?viewStateShareKey=abc&compareRunsMode=CHART"
                                     "&workflowType=machine_learning")
