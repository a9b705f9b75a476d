"""One ad-hoc run outside DVC, with Hydra overrides of conf/train.yaml:

    python -m pipeline.train dataset=moons regularization=[l2,dropout] trainer.max_steps=500
    python -m pipeline.train regularization=[l1] 'seeds=[0,1,2,3,4]'    # five seeds at once

makes the data in memory, trains every seed's network at once, evaluates
them and logs each as an MLflow run (tagged source=adhoc). Nothing is
written into the repository.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from pipeline.analysis import figures
from pipeline.analysis.evaluation import evaluate
from pipeline.analysis.statistics import interval
from pipeline.config import AdhocConfig
from pipeline.core.errors import cli
from pipeline.core.schema import validate
from pipeline.data.raw import check
from pipeline.data.splits import SPLITS, checksum, split
from pipeline.engine.fit import Member
from pipeline.engine.network import Probabilities
from pipeline.params import compose
from pipeline.tracking.runs import log_evaluation, train_tracked, training_input
from pipeline.tracking.store import common_tags, connect, failing, tracking_uri


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
    trained, result, run_ids = train_tracked(
        [Member(seed, config.regularization) for seed in config.seeds], config.model, config.trainer, splits,
        experiment=dataset_name, names=[config.recipe] * len(config.seeds),
        tags=[tags | {"seed": str(seed)} for seed in config.seeds],
        configs=[run_config | {"seed": seed} for seed in config.seeds])

    client = connect()
    documents, y_pred = evaluate(trained.net, splits, config.analysis.sparsity_threshold)
    grid = figures.plane(splits) if splits.n_features == 2 else None
    proba = figures.probabilities(trained.net, *grid) if grid is not None else None
    example = torch.as_tensor(splits.X["train"][:5], dtype=trained.net.dtype)
    dataset = training_input(dataset_name, splits)
    with failing(client, run_ids), tempfile.TemporaryDirectory() as tmp:
        for k, run_id in enumerate(run_ids):
            directory = Path(tmp) / str(k)
            directory.mkdir()
            figures.network_figures(directory, config.recipe, splits, documents[k], result.curves[k],
                                    figures.weight_matrices(trained.net, k), y_pred[k],
                                    proba[k] if proba is not None else None, grid, result.figures[k].get("best_step"))
            documents[k]["training"] = {"steps": result.steps[k], **result.figures[k]}
            log_evaluation(client, run_id, documents[k], directory, Probabilities(trained.single(k)), example,
                           f"{config.recipe}-seed-{config.seeds[k]}", dataset)

    print(f"ad-hoc {dataset_name}/{config.recipe}: MLflow runs {', '.join(run_ids)} in {tracking_uri()}")
    for seed, document in zip(config.seeds, documents):
        accuracies = "  ".join(f"{part} {document[part]['accuracy']:.4f}" for part in SPLITS if part in document)
        weights = document["weights"]
        print(f"  seed {seed}: {accuracies}  sparsity {weights['sparsity']:.1%}  "
              f"max column norm {weights['max_column_norm']:.2f}")
    if len(documents) > 1:
        test = interval([document["test"]["accuracy"] for document in documents])
        print(f"  test accuracy over {test['n']} seeds: {test['mean']:.4f}, "
              f"95% interval [{test['ci95_low']:.4f}, {test['ci95_high']:.4f}]")


if __name__ == "__main__":
    main()
