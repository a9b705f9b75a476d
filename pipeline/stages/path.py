"""Stage path: the regularization paths of one dataset. Each path's recipe is
trained at every value of its swept strength and every seed, all as one
batch, then evaluated on train, dev and test.

    python -m pipeline.stages.path moons

Writes reports/<dataset>/paths/: <path>.csv (a row per strength and seed:
the accuracies, losses and the weight statistic the technique acts on) and
<path>.png (each against strength, with seed intervals and the strengths
chosen on dev marked: the best, and the most regularized within one standard
error of it); and logs an MLflow run per path (the figure), nested
under the pipeline run's parent, with one child run per strength.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from pipeline.analysis import figures
from pipeline.analysis.evaluation import evaluate
from pipeline.analysis.regularization_path import by_strength, one_standard_error, rows, select, to_csv
from pipeline.config import PARAMS_FILE, PipelineConfig, load_params
from pipeline.core.atomic import atomic_dir, write_text
from pipeline.core.errors import cli
from pipeline.core.paths import paths_dir
from pipeline.data.splits import Splits, checksum, load_splits
from pipeline.engine.fit import Member, fit
from pipeline.techniques import TECHNIQUES
from pipeline.tracking.runs import log_path, parent_of
from pipeline.tracking.store import (NOTE, common_tags, connect, failing, flatten, log_metrics, pipeline_run_id,
                                     start_runs, supersede)


def run_path(dataset: str, name: str, params: PipelineConfig, splits: Splits, client, tags: dict,
             directory: Path, pipeline: str) -> str:
    """Train, evaluate and record one path into directory; a line saying what dev chose."""
    path = params.path(name)
    technique = TECHNIQUES[path.sweep]
    swept = f"{path.sweep}.{technique.sweeps}"
    config = {"path": path.model_dump(mode="json", exclude_none=True), "seeds": params.seeds,
              "model": params.model.model_dump(mode="json"), "trainer": params.trainer.model_dump(mode="json")}
    description = (f"Regularization path of {swept} over {len(path.values)} values x {len(params.seeds)} seeds; "
                   f"one nested run per value. Chart its runs' dev_accuracy against the param strength.")
    path_tags = tags | {"kind": "path", "path": name, NOTE: description}
    (parent,) = start_runs(client, dataset, [f"path {name}"], [path_tags], [flatten(config)], parent=pipeline)
    supersede(client, dataset, pipeline, {"kind": "path", "path": name}, [parent])
    with failing(client, [parent], [pipeline]):
        members = [Member(seed, path.recipe_at(value), label=f"{swept} {value:g}, seed {seed}")
                   for value in path.values for seed in params.seeds]
        result = fit(members, params.model, params.trainer, splits)
        documents, _ = evaluate(result.net, splits, params.analysis.sparsity_threshold)
        table = rows(path.values, params.seeds, documents, technique.statistic)
        summary = by_strength(table)
        chosen, simpler = select(summary), one_standard_error(table, summary, technique.stronger)
        selected = chosen["strength"] if chosen else None
        one_se = simpler["strength"] if simpler else None
        write_text(directory / f"{name}.csv", to_csv(table))
        figure = directory / f"{name}.png"
        figures.regularization_path(figure, summary, f"{dataset}: {name} path", swept, technique.statistic, selected,
                                    one_se)
        log_path(client, parent, dataset, summary, swept, tags | {"kind": "path strength", "path": name})
        if chosen:
            log_metrics(client, parent, [("strength_chosen_on_dev", selected, 0), ("strength_one_se", one_se, 0)])
        with Image.open(figure) as image:
            client.log_image(parent, image.convert("RGB"), key="regularization_path")
    shown = (f"chosen on dev: {swept} = {selected:g} (one-standard-error choice {one_se:g})" if chosen
             else "no dev set, nothing chosen")
    return f"path {dataset}/{name}: {len(path.values)} values x {len(params.seeds)} seeds; {shown}"


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    args = parser.parse_args(argv)
    params = load_params()
    params.dataset(args.dataset)
    splits = load_splits(args.dataset)
    client = connect()
    tags = common_tags(args.dataset, "dvc", pipeline_run_id(PARAMS_FILE), data_sha256=checksum(splits))
    pipeline = parent_of(client, args.dataset, splits, tags)
    with atomic_dir(paths_dir(args.dataset)) as directory:
        for name in params.paths:
            print(run_path(args.dataset, name, params, splits, client, tags, directory, pipeline))


if __name__ == "__main__":
    main()
