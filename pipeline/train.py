"""One ad-hoc run outside DVC, with Hydra overrides of conf/train.yaml:

    python -m pipeline.train dataset=moons regularization=[l2,dropout] trainer.max_steps=500
    python -m pipeline.train regularization=[l1] 'seeds=[0,1,2,3,4]'    # five seeds at once

makes the data in memory, trains every seed's network at once (with a bar of
steps on a terminal), evaluates them and logs each as an MLflow run (tagged
source=adhoc) in the experiment <dataset>-adhoc, apart from the pipeline's
runs; it prints each run's address in the MLflow UI. Nothing is written into
the repository.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pipeline.analysis import figures
from pipeline.analysis.evaluation import evaluate
from pipeline.analysis.statistics import interval
from pipeline.config import AdhocConfig
from pipeline.core.errors import cli
from pipeline.core.schema import validate
from pipeline.data.raw import check
from pipeline.data.splits import SPLITS, checksum, split
from pipeline.engine.fit import Member
from pipeline.params import compose
from pipeline.tracking.runs import log_evaluation, train_tracked
from pipeline.tracking.store import (common_tags, connect, experiment_id, failing, run_url, tracking_uri,
                                     ui_command)


@cli
def main(argv: list[str] | None = None) -> None:
    overrides = sys.argv[1:] if argv is None else argv
    data = compose("train", overrides, with_choices=True)
    dataset_name = data.pop("_choices")["dataset"]
    regularization = data.pop("regularization", {})
    config = validate(AdhocConfig, {**data, "dataset_name": dataset_name, "regularization": regularization,
                                    "recipe": "+".join(regularization) or "baseline"},
                      "conf/train.yaml with overrides")
    splits = split(check(config.dataset.source.load(), dataset_name), config.dataset.split)
    tags = common_tags(dataset_name, "adhoc", data_sha256=checksum(splits), recipe=config.recipe)
    run_config = config.model_dump(mode="json", exclude={"seeds", "analysis"}, exclude_none=True)
    experiment = f"{dataset_name}-adhoc"
    progress = sys.stdout.isatty()
    trained, result, run_ids = train_tracked(
        [Member(seed, config.regularization) for seed in config.seeds], config.model, config.trainer, splits,
        experiment=experiment, names=[config.recipe] * len(config.seeds),
        tags=[tags | {"seed": str(seed)} for seed in config.seeds],
        configs=[run_config | {"seed": seed} for seed in config.seeds], progress=progress)

    client = connect()
    documents, y_pred = evaluate(trained.net, splits, config.analysis.sparsity_threshold)
    grid = figures.plane(splits) if splits.n_features == 2 else None
    proba = figures.probabilities(trained.net, *grid) if grid is not None else None
    with failing(client, run_ids), tempfile.TemporaryDirectory() as tmp:
        for k, run_id in enumerate(run_ids):
            directory = Path(tmp) / str(k)
            directory.mkdir()
            figures.network_figures(directory, config.recipe, splits, documents[k], result.curves[k],
                                    figures.weight_matrices(trained.net, k), y_pred[k],
                                    proba[k] if proba is not None else None, grid)
            log_evaluation(client, run_id, documents[k], directory)

    uri, adhoc_experiment_id = tracking_uri(), experiment_id(client, experiment)
    lines = [f"ad-hoc {dataset_name}/{config.recipe}: MLflow experiment {experiment} in {uri}"]
    for seed, document, run_id in zip(config.seeds, documents, run_ids):
        accuracies = "  ".join(f"{part} {document[part]['accuracy']:.4f}" for part in SPLITS if part in document)
        weights = document["weights"]
        lines += [f"  seed {seed}: {accuracies}  sparsity {weights['sparsity']:.1%}  "
                  f"max column norm {weights['max_column_norm']:.2f}",
                  f"    {run_url(uri, adhoc_experiment_id, run_id)}"]
    if len(documents) > 1:
        test = interval([document["test"]["accuracy"] for document in documents])
        lines.append(f"  test accuracy over {test['n']} seeds: {test['mean']:.4f}, "
                     f"95% interval [{test['ci95_low']:.4f}, {test['ci95_high']:.4f}]")
    if command := ui_command(uri):
        lines.append(f"  to open these links, start the UI: {command}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
