"""A pipeline run of one dataset into MLflow, from the files its stages wrote:
the run tree, written here and nowhere else.

    pipeline <id>                      the comparison: the report as its description, its figures,
    ├── baseline, l2, ...              the chosen recipe and strengths, headline metrics, every
    │                                  recipe's boundary and every path's curve, for the view
    │   └── l2 · seed 0, ...          a recipe's evidence over seeds; under it each seed's network
    └── path l2                        a path's figure and chosen strengths
        └── l2.strength=0.1, ...       each strength's means and intervals over seeds

Every value comes from a stage's declared outputs, so the tree can be written
into any store (a new mlflow.db, a team server) at any time. The stored view
(pipeline.tracking.views) that opens the answer in MLflow's UI is written last.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import quote

import torch

from pipeline.analysis.dropout_figures import FIGURE as DROPOUT_FIGURE
from pipeline.analysis.landscapes import surfaces_drawn
from pipeline.analysis.loss_slice_figures import FIGURE as LOSS_LANDSCAPES_FIGURE
from pipeline.analysis.regularization_path import by_strength, from_csv
from pipeline.analysis.strength_views import load_views
from pipeline.analysis.weights import STATISTICS, statistics_during_training
from pipeline.analysis.weights_over_training import FIGURES
from pipeline.config import PARAMS_FILE, PipelineConfig
from pipeline.core.errors import PipelineError
from pipeline.core.atomic import read_json
from pipeline.core.paths import (figures_dir, history_path, landscapes_dir, metrics_path, model_path, path_table,
                                 report_dir, snapshots_dir, strength_views_dir, weights_path)
from pipeline.data.splits import Splits, checksum
from pipeline.engine import checkpoint
from pipeline.engine.network import Probabilities
from pipeline.techniques import TECHNIQUES
from pipeline.tracking.runs import (NetworkRecord, as_image, describe_dataset, describe_recipe, interval_points,
                                    log_network, log_path_strength, log_recipe, seed_run_name, training_input)
from pipeline.tracking.store import (NOTE, common_tags, connect, experiment_id, failing, flatten, log_metrics,
                                     pipeline_run_id, start_runs, tracking_uri, ui_address)
from pipeline.tracking.views import BOUNDARY, LANDSCAPE, comparison_view, path_metric, store_view, view_link
from pipeline.usecases.training import load_snapshots, load_weights

REPORT_FILES = ("summary.md", "summary.json")


def artifact_links(page: str, run_id: str) -> str:
    """The report's relative links (figures/..., paths/..., ../landscapes/...)
    as addresses the MLflow server answers: its get-artifact endpoint,
    relative to the UI's page (the pipeline run holds them under those names)."""
    def served(match: re.Match) -> str:
        return f"]({'get-artifact?path=' + quote(match.group(1), safe='')}&run_uuid={run_id})"

    return re.sub(r"\]\((?:\.\./)?((?:figures|paths|landscapes)/[^)\s]+)\)", served, page)


def description(head: str, page: str, run_id: str) -> str:
    """head then the report page, as much of it as MLflow keeps in a
    description (a tag: it cuts longer ones mid-word): whole sections, and a
    link to the full page (the run's summary.md) for the sections left out."""
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    rest = (f"\n\n*The rest of the report: [summary.md](get-artifact?path=summary.md&run_uuid={run_id}), and "
            "its figures under Artifacts.*")
    if len(head) + len(page) <= MAX_TAG_VAL_LENGTH:
        return head + page
    sections = re.split(r"(?=\n## )", page)
    while len(sections) > 1 and len(head) + sum(map(len, sections)) + len(rest) > MAX_TAG_VAL_LENGTH:
        sections.pop()
    return head + "".join(sections) + rest


def record_pipeline_run(dataset: str, params: PipelineConfig, splits: Splits) -> str:
    """Write the dataset's pipeline run into the tracking store; returns the
    address of its view in the MLflow UI."""
    report = report_dir(dataset)
    summary = read_json(report / "summary.json")
    page = (report / "summary.md").read_text()
    client = connect()
    experiment = experiment_id(client, dataset, describe_dataset(dataset, splits))
    group = pipeline_run_id(PARAMS_FILE)
    tags = common_tags(dataset, "dvc", group, data_sha256=checksum(splits))
    shared = flatten({"seeds": params.seeds, "model": params.model.model_dump(mode="json"),
                      "trainer": params.trainer.model_dump(mode="json")})
    (parent,) = start_runs(client, dataset, [f"pipeline {group}"],
                           [tags | {"kind": "pipeline", NOTE: f"Pipeline run {group} of {dataset}: being recorded."}],
                           [shared | chosen_params(summary)])
    with failing(client, [parent]):
        example = torch.as_tensor(splits.X["train"][:5])
        data = training_input(dataset, splits)
        # last to first: MLflow lists the newest first, so the UI lists them baseline first
        recipe_runs = [record_recipe(client, dataset, recipe, params, summary["recipes"][recipe],
                                     summary["weights_during_training"][recipe],
                                     summary["dropout_at_test_time"].get(recipe), tags, parent, example, data)
                       for recipe in reversed(params.compared())][::-1]
        for name in reversed(params.paths):
            record_path(client, dataset, name, params, summary["paths"].get(name), tags, parent)
        surfaces = surfaces_drawn(landscapes_dir())
        drawn, images = record_comparison(client, dataset, parent, summary, report, params, surfaces)
        view = comparison_view([parent, *recipe_runs], drawn, list(params.paths), params.seeds[0], len(params.seeds),
                               FIGURES, STATISTICS, surfaces,
                               LOSS_LANDSCAPES_FIGURE if LOSS_LANDSCAPES_FIGURE in images else None,
                               DROPOUT_FIGURE if DROPOUT_FIGURE in images else None)
        link = view_link(experiment, store_view(client, experiment, view))
        client.set_tag(parent, NOTE, description(
            f"**[Open the comparison]({link})**: every recipe's boundary, accuracy and path in charts; its "
            f"intervals and verdict in the table.\n\n", artifact_links(page, parent), parent))
    return f"{ui_address(tracking_uri())}/{link}"


def record_recipe(client, dataset: str, recipe: str, params: PipelineConfig, row: dict, weight_curves: dict,
                  dropout: dict | None, tags: dict, parent: str, example: torch.Tensor, data) -> str:
    """A recipe's run with its evidence over seeds (row; weight_curves, its
    weight statistics' intervals over training; dropout, its ways to predict
    when it has dropout), and under it one run per seed with its network;
    returns the recipe run's id."""
    regularization = params.suite[recipe].model_dump(mode="json", exclude_none=True)
    trained = checkpoint.load(model_path(dataset, recipe))
    curves = checkpoint.load_curves(history_path(dataset, recipe))
    seeds = list(trained.seeds)
    configs = {seed: config(dataset, recipe, seed, params) for seed in seeds}
    during_training = statistics_during_training(load_weights(weights_path(dataset, recipe)),
                                                 params.analysis.sparsity_threshold)
    (recipe_run,) = start_runs(client, dataset, [recipe], [tags | {
        "kind": "recipe", "recipe": recipe,
        NOTE: f"{describe_recipe(recipe, regularization)}: its evidence over {len(seeds)} seeds (means, 95% "
              f"intervals, the paired difference to the baseline and its verdict after Holm's adjustment); "
              f"one nested run per seed."}], [flatten(regularization, "regularization")], parent=parent)
    seed_runs = start_runs(
        client, dataset, [seed_run_name(recipe, seed) for seed in seeds],
        [tags | {"kind": "seed", "recipe": recipe, "seed": str(seed)} for seed in seeds],
        [flatten(configs[seed]) for seed in seeds], parent=recipe_run)
    with failing(client, [*seed_runs, recipe_run]):
        for k, (seed, run_id) in enumerate(zip(seeds, seed_runs)):
            record = NetworkRecord(recipe, seed, configs[seed], curves[seed],
                                   read_json(metrics_path(dataset, recipe, seed)), figures_dir(dataset, recipe, seed),
                                   load_snapshots(snapshots_dir(dataset, recipe), seed),
                                   {step: networks[k] for step, networks in during_training.items()},
                                   Probabilities(trained.single(k)))
            log_network(client, run_id, record, example.to(trained.net.dtype), data)
        boundary = figures_dir(dataset, recipe, seeds[0]) / "decision_boundary.png"
        log_recipe(client, recipe_run, row, weight_curves, boundary if boundary.exists() else None, dropout)
    return recipe_run


def config(dataset: str, recipe: str, seed: int, params: PipelineConfig) -> dict:
    """What made one network: its run's params and config.yaml."""
    return {"seed": seed, "dataset_name": dataset, "dataset": params.datasets[dataset].model_dump(mode="json"),
            "model": params.model.model_dump(mode="json"), "trainer": params.trainer.model_dump(mode="json"),
            "recipe": recipe, "regularization": params.suite[recipe].model_dump(mode="json", exclude_none=True)}


def record_path(client, dataset: str, name: str, params: PipelineConfig, chosen: dict | None, tags: dict,
                parent: str) -> None:
    """A path's run (its figure, the strengths chosen on dev) and one run per
    strength (with its boundary, for points in the plane)."""
    path = params.path(name)
    swept = f"{path.sweep}.{TECHNIQUES[path.sweep].sweeps}"
    try:
        summary = by_strength(from_csv(path_table(dataset, name).read_text()))
    except (OSError, ValueError, KeyError):
        raise PipelineError(f"{path_table(dataset, name)} is missing or corrupt: run dvc repro") from None
    description = (f"Regularization path of {swept} over {len(path.values)} values x {len(params.seeds)} seeds; "
                   f"one nested run per value, holding its means and 95% intervals over seeds.")
    (path_run,) = start_runs(client, dataset, [f"path {name}"],
                             [tags | {"kind": "path", "path": name, NOTE: description}],
                             [flatten(path.model_dump(mode="json", exclude_none=True))], parent=parent)
    children = start_runs(client, dataset, [f"{swept}={row['strength']:g}" for row in summary],
                          [tags | {"kind": "path strength", "path": name} for _ in summary],
                          [{"strength": str(row["strength"]), swept: str(row["strength"])} for row in summary],
                          parent=path_run)
    views = load_views(strength_views_dir(dataset) / f"{name}.npz")
    # per strength, its first seed's boundary (points in the plane)
    boundaries = dict(zip(views.strengths.tolist(), views.images)) if views.images is not None else {}
    with failing(client, [*children, path_run]):
        for run_id, row in zip(children, summary):
            log_path_strength(client, run_id, row, TECHNIQUES[path.sweep].statistic, boundaries.get(row["strength"]))
        if chosen:
            log_metrics(client, path_run, [("strength_chosen_on_dev", chosen["selected"], 0),
                                           ("strength_one_se", chosen["one_se"]["strength"], 0)])
        figure = path_table(dataset, name).with_suffix(".png")
        client.log_image(path_run, as_image(figure), key="regularization_path", step=0)
        boundaries = figure.with_name(f"{name}_boundaries.png")
        if boundaries.exists():  # points in the plane: the boundary at each strength
            client.log_image(path_run, as_image(boundaries), key="decision_boundaries", step=0)
    log_metrics(client, parent, path_curve(name, summary, chosen))


def path_curve(name: str, summary: list[dict], chosen: dict | None) -> list[tuple[str, float, int]]:
    """A path as metric histories of the pipeline run, one step per strength
    (MLflow's steps are integers): the strength and its log10 (the x axis of
    the view's chart: MLflow 3.17 draws a log axis for steps only), dev
    accuracy's mean and 95% interval, and the mean once more at the strength
    chosen on dev alone, to mark it."""
    points = []
    for step, row in enumerate(summary):
        dev, strength = row["dev_accuracy"], row["strength"]
        points.append((path_metric(name, "strength"), strength, step))
        if strength > 0:  # as on the report's log axis, a strength of 0 has no place
            points.append((path_metric(name, "log10_strength"), math.log10(strength), step))
        points += interval_points(path_metric(name, "dev_accuracy"), dev, step)
        if chosen and strength == chosen["selected"]:
            points.append((path_metric(name, "chosen_on_dev"), dev["mean"], step))
    return points


def chosen_params(summary: dict) -> dict[str, str]:
    """The recipe and the path strengths chosen on dev, as the parent's params."""
    chosen = summary["chosen_on_dev"]
    params = {"chosen_on_dev": chosen["recipe"]} if chosen else {}
    params |= {f"{name}.chosen_on_dev": str(path["selected"]) for name, path in summary["paths"].items()}
    return params | {f"{name}.one_se": str(path["one_se"]["strength"]) for name, path in summary["paths"].items()}


def record_comparison(client, dataset: str, parent: str, summary: dict, report: Path, params: PipelineConfig,
                      surfaces: list[str]) -> tuple[list[str], list[str]]:
    """The parent's own content: the report's files, the headline metrics (the
    chosen recipe's and the baseline's test accuracy), each recipe's
    decision boundary (first seed) as an image keyed by recipe, the weights
    over training (its two figures), the loss around each recipe's network,
    dropout's ways to predict and the penalty landscapes of surfaces.
    Returns the recipes whose boundary it holds (none for data that is not a
    plane), and the image keys of the loss slices and dropout figures it holds."""
    drawn = []
    for recipe in params.compared():
        boundary = figures_dir(dataset, recipe, params.seeds[0]) / "decision_boundary.png"
        if boundary.exists():
            client.log_image(parent, as_image(boundary), key=f"{BOUNDARY}/{recipe}", step=0)
            drawn.append(recipe)
    for key in FIGURES:  # every recipe's weights over training
        client.log_image(parent, as_image(report / "figures" / f"{key}.png"), key=key, step=0)
    images = []
    for key in (LOSS_LANDSCAPES_FIGURE, DROPOUT_FIGURE):  # where the analysis made them
        if (figure := report / "figures" / f"{key}.png").exists():
            client.log_image(parent, as_image(figure), key=key, step=0)
            images.append(key)
    for name in REPORT_FILES:
        client.log_artifact(parent, str(report / name))
    client.log_artifacts(parent, str(report / "figures"), "figures")
    for surface in surfaces:  # the penalty landscapes, the same for every dataset
        figure = landscapes_dir() / f"{surface}.png"
        client.log_image(parent, as_image(figure), key=f"{LANDSCAPE}/{surface}", step=0)
        client.log_artifact(parent, str(figure), "landscapes")
    for figure in sorted((report / "paths").glob("*.png")):
        client.log_artifact(parent, str(figure), "paths")
    chosen = summary["chosen_on_dev"]
    baseline = next((recipe for recipe in params.compared() if not params.suite[recipe].techniques()), None)
    headline = []
    for role, recipe in (("chosen", chosen["recipe"] if chosen else None), ("baseline", baseline)):
        if recipe is not None:
            test = summary["recipes"][recipe]["test_accuracy"]
            headline += interval_points(f"{role}_test_accuracy", test)
    log_metrics(client, parent, headline)
    return drawn, images
