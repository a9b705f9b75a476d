"""The stored view that opens a pipeline run's answer in MLflow's UI.

MLflow 3.17's runs page loads a view (search, sort, columns, chart cards)
from an experiment tag `mlflow.sharedViewState.<key>` when a link carries
`viewStateShareKey=<key>`: the format its own "Share" button writes (JSON,
optionally zlib-deflated and base64-encoded behind `deflate;`). One view per
pipeline run, written by the track stage:

- runs: the pipeline run first, then one run per recipe, baseline first
  (sorted by the `kind` tag, "pipeline" before "recipe"; ties newest first,
  so recipe runs are created last to first). They are named by id: MLflow's
  search has no OR, and the same params tracked twice share `pipeline_run`;
- charts: every recipe's decision boundary (images the pipeline run holds,
  one card each: an image card shows the first 10 runs only, so the
  boundaries are not spread over the recipe runs), each recipe's mean test
  accuracy, and each regularization path against log10 of its strength (the
  pipeline run's `path/<name>/...` metric histories, one step per strength;
  the UI draws a log axis for steps only);
- weights over training: the pipeline run's two figures (every recipe's
  weight histograms by step, the statistics with intervals) and a chart per
  statistic, a line per recipe (its mean over seeds) against the step;
- the penalty landscapes (images the pipeline run holds, one per surface);
- the table (one click): each recipe's verdict against the baseline, its
  mean test accuracy with its 95% interval, its paired difference to the
  baseline with its interval and the Holm-adjusted p-value.

Run pinning, expansion and visibility are the viewer's own in 3.17 (a shared
view does not carry them), which is why order and content come from the
search alone. `workflowType=machine_learning` opens the Model training
layout, whatever the browser last chose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from urllib.parse import urlencode

VIEW_TAG = "mlflow.sharedViewState."
COMPRESSED = "deflate;"
TAG_LIMIT = 20_000  # MLflow's longest experiment tag value
BOUNDARY = "decision_boundary"  # the key of each recipe's boundary image in the pipeline run: BOUNDARY/<recipe>
LANDSCAPE = "penalty_landscape"  # and of each artificial surface's: LANDSCAPE/<surface>
# The table's columns, left to right after the run's name: in view at 1280 pixels, the verdict and the interval
TABLE_COLUMNS = (("tags", "verdict"), ("metrics", "test_accuracy_mean"), ("metrics", "test_accuracy_ci95_low"),
                 ("metrics", "test_accuracy_ci95_high"), ("metrics", "test_accuracy_vs_baseline_mean"),
                 ("metrics", "test_accuracy_vs_baseline_ci95_low"), ("metrics", "test_accuracy_vs_baseline_ci95_high"),
                 ("metrics", "p_value_holm"))
RUN_NAME, CREATED, DURATION = "attributes.`Run Name`", "runDateAndNestInfo", "duration"  # the UI's own column ids
PATH_BANDS = ("dev_accuracy_mean", "dev_accuracy_ci95_low", "dev_accuracy_ci95_high", "chosen_on_dev")


def path_metric(path: str, name: str) -> str:
    """The pipeline run's metric history of one path: one step per strength, in grid order."""
    return f"path/{path}/{name}"


SECTIONS = [("boundaries", "Decision boundaries"), ("accuracy", "Test accuracy over seeds"),
            ("paths", "Regularization paths"), ("weights", "Weights during training"),
            ("loss-landscapes", "Loss landscapes of the trained networks"), ("dropout", "Dropout at test time"),
            ("landscapes", "Penalty landscapes")]  # the view's sections, in order: uuid, heading


def column(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"


def card(uuid: str, section: str, kind: str, **config) -> dict:
    # runsCountToCompare: bar and line cards would otherwise show the first 10 runs only
    return {"uuid": uuid, "type": kind, "metricSectionId": section, "runsCountToCompare": 100, "deleted": False,
            "isGenerated": False, **config}


def section(uuid: str, name: str) -> dict:
    return {"uuid": uuid, "name": name, "display": True, "isReordered": False, "deleted": False,
            "isGenerated": False}


def comparison_view(run_ids: list[str], recipes: list[str], paths: list[str], seed: int, seeds: int,
                    weight_figures: tuple[str, ...] = (), weight_statistics: tuple[str, ...] = (),
                    landscapes: list[str] = (), loss_landscapes: str | None = None,
                    dropout: str | None = None) -> dict:
    """The view of one pipeline run: run_ids are the pipeline run's and its
    recipe runs'; recipes in the order the charts show them (baseline first);
    weight_figures, the pipeline run's image keys of the weights over
    training; weight_statistics, the recipe runs' `curve/<statistic>_mean`;
    landscapes, the surfaces of the pipeline run's LANDSCAPE images;
    loss_landscapes and dropout, its image keys of the trained networks'
    loss slices and of dropout's ways to predict (with it, the dropout
    recipes' Monte Carlo scores against T)."""
    charts = [card(f"boundary-{recipe}", "boundaries", "IMAGE", imageKeys=[f"{BOUNDARY}/{recipe}"], step=0,
                   showRunParams=False, displayName=f"{recipe}: decision boundary (seed {seed})")
              for recipe in recipes]
    charts += [card("test-accuracy", "accuracy", "BAR", metricKey="test_accuracy_mean",
                    displayName=f"test accuracy, mean over {seeds} seeds"),
               card("versus-baseline", "accuracy", "BAR", metricKey="test_accuracy_vs_baseline_mean",
                    displayName="test accuracy minus the baseline's, mean over seeds (paired)")]
    charts += [card(f"path-{path}", "paths", "LINE", metricKey=path_metric(path, PATH_BANDS[0]),
                    selectedMetricKeys=[path_metric(path, band) for band in PATH_BANDS],
                    xAxisKey="metric", selectedXAxisMetricKey=path_metric(path, "log10_strength"),
                    xAxisScaleType="linear", scaleType="linear", useGlobalXaxisKey=False, displayPoints=True,
                    lineSmoothness=0, useGlobalLineSmoothing=False,
                    displayName=f"path {path}: dev accuracy (mean, 95% interval) against log10 strength; "
                                f"the point alone is the strength chosen on dev")
               for path in paths]
    charts += [card(f"weights-{key}", "weights", "IMAGE", imageKeys=[key], step=0, showRunParams=False,
                    displayName=key.replace("_", " ")) for key in weight_figures]
    charts += [card(f"weight-curve-{name}", "weights", "LINE", metricKey=f"curve/{name}_mean",
                    selectedMetricKeys=[f"curve/{name}_mean"], xAxisKey="step", selectedXAxisMetricKey="",
                    xAxisScaleType="log", scaleType="linear", useGlobalXaxisKey=False, displayPoints=True,
                    lineSmoothness=0, useGlobalLineSmoothing=False,
                    displayName=f"{name} during training, mean over {seeds} seeds, a line per recipe "
                                f"(intervals: the recipe run's curve/{name}_ci95_low and _high)")
               for name in weight_statistics]
    if loss_landscapes:
        charts.append(card("loss-landscapes", "loss-landscapes", "IMAGE", imageKeys=[loss_landscapes], step=0,
                           showRunParams=False, displayName="the loss around each recipe's network"))
    if dropout:
        charts.append(card("dropout", "dropout", "IMAGE", imageKeys=[dropout], step=0, showRunParams=False,
                           displayName="predicting with dropout: weight scaling, Monte Carlo, the seeds' ensemble"))
        charts += [card(f"dropout-{metric}", "dropout", "LINE", metricKey=f"dropout/monte_carlo_{metric}_mean",
                        selectedMetricKeys=[f"dropout/monte_carlo_{metric}_mean"], xAxisKey="step",
                        selectedXAxisMetricKey="", xAxisScaleType="log", scaleType="linear", useGlobalXaxisKey=False,
                        displayPoints=True, lineSmoothness=0, useGlobalLineSmoothing=False,
                        displayName=f"Monte Carlo dropout's {metric} against T, the masks averaged (step), mean "
                                    f"over {seeds} seeds, a line per dropout recipe (weight scaling: "
                                    f"dropout/weight_scaling_{metric}_mean)")
                   for metric in ("nll", "ece")]
    charts += [card(f"landscape-{surface}", "landscapes", "IMAGE", imageKeys=[f"{LANDSCAPE}/{surface}"], step=0,
                    showRunParams=False, displayName=f"{surface} with an L2 or L1 penalty")
               for surface in landscapes]
    quoted = ", ".join(f"'{run_id}'" for run_id in run_ids)
    return {
        # what the runs page searches (its URL parameters)
        "searchFilter": f"attributes.run_id IN ({quoted})", "orderByKey": column("tags", "kind"),
        "orderByAsc": True, "startTime": "ALL", "lifecycleFilter": "Active", "datasetsFilter": [],
        "modelVersionFilter": "All Runs",
        # how it shows them
        "selectedColumns": [column(kind, key) for kind, key in TABLE_COLUMNS],
        "columnOrder": [RUN_NAME, *(column(kind, key) for kind, key in TABLE_COLUMNS), CREATED, DURATION],
        "columnWidths": {RUN_NAME: 130} | {column(kind, key): max(110, 20 + 7 * len(key))
                                           for kind, key in TABLE_COLUMNS},
        "runsHiddenMode": "SHOW_ALL", "compareRunCharts": charts,
        "compareRunSections": [section(uuid, name) for uuid, name in SECTIONS  # the ones with cards
                               if any(chart["metricSectionId"] == uuid for chart in charts)],
        "isAccordionReordered": True, "viewMaximized": False, "runListHidden": False, "groupBy": None,
        "groupsExpanded": {}, "useGroupedValuesInCharts": True, "hideEmptyCharts": True,
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
        "chartsSearchFilter": "",
    }


def serialized(view: dict) -> str:
    """The tag's value as the UI's Share button writes it: deflated, so that
    a suite of many recipes stays within MLflow's tag limit."""
    text = json.dumps(view, sort_keys=True)
    value = COMPRESSED + base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    if len(value) > TAG_LIMIT:
        raise ValueError(f"the view is {len(value)} characters, over MLflow's {TAG_LIMIT}")
    return value


def deserialized(value: str) -> dict:
    if value.startswith(COMPRESSED):
        value = zlib.decompress(base64.b64decode(value[len(COMPRESSED):])).decode()
    return json.loads(value)


def store_view(client, experiment: str, view: dict) -> str:
    """Write the view as an experiment tag; returns its key (a digest of its
    value, as the UI's own: the same view is stored once)."""
    value = serialized(view)
    key = hashlib.sha256(value.encode()).hexdigest()
    client.set_experiment_tag(experiment, VIEW_TAG + key, value)
    return key


def view_link(experiment: str, key: str) -> str:
    """The view's address relative to the UI's page (a description's links
    resolve against it, on whichever host serves the UI)."""
    query = urlencode({"viewStateShareKey": key, "compareRunsMode": "CHART", "workflowType": "machine_learning"})
    return f"#/experiments/{experiment}/runs?{query}"
