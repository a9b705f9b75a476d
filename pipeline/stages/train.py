"""Stage train: every seed of one recipe on one dataset, trained at once.

    python -m pipeline.stages.train moons l2

Each seed's network is its own MLflow run (tagged recipe and seed), nested
under the pipeline run's parent run; runs of an earlier run of this stage
with the same params are marked superseded. Writes
models/<dataset>/<recipe>/: model.pt (all seeds' networks), training.json
(per seed: MLflow run id, steps taken, the techniques' figures) and
history.csv (per seed: the learning curves).
"""

from __future__ import annotations

import argparse

from pipeline.config import PARAMS_FILE, load_params
from pipeline.core.atomic import write_json
from pipeline.core.errors import cli
from pipeline.core.paths import history_path, model_path, training_record_path
from pipeline.data.splits import checksum, load_splits
from pipeline.engine import checkpoint
from pipeline.engine.fit import Member
from pipeline.tracking.runs import parent_of, train_tracked
from pipeline.tracking.store import common_tags, connect, pipeline_run_id, supersede


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    parser.add_argument("recipe", help="a key of suite in params.yaml")
    args = parser.parse_args(argv)
    params = load_params()
    dataset, recipe = params.dataset(args.dataset), params.recipe(args.recipe)
    splits = load_splits(args.dataset)
    tags = common_tags(args.dataset, "dvc", pipeline_run_id(PARAMS_FILE), data_sha256=checksum(splits))
    configs = [{"seed": seed, "dataset_name": args.dataset, "dataset": dataset.model_dump(mode="json"),
                "model": params.model.model_dump(mode="json"), "trainer": params.trainer.model_dump(mode="json"),
                "recipe": args.recipe, "regularization": recipe.model_dump(mode="json", exclude_none=True)}
               for seed in params.seeds]
    client = connect()
    parent = parent_of(client, args.dataset, splits, tags)
    trained, result, run_ids = train_tracked(
        client, [Member(seed, recipe) for seed in params.seeds], params.model, params.trainer, splits,
        experiment=args.dataset, names=[args.recipe] * len(params.seeds),
        tags=[tags | {"kind": "recipe", "recipe": args.recipe, "seed": str(seed)} for seed in params.seeds],
        configs=configs, parent=parent)
    supersede(client, args.dataset, parent, {"kind": "recipe", "recipe": args.recipe}, run_ids)

    checkpoint.save(trained, model_path(args.dataset, args.recipe))
    record = {str(seed): {"run_id": run_id, "steps": steps, **figures}
              for seed, run_id, steps, figures in zip(params.seeds, run_ids, result.steps, result.figures)}
    write_json(training_record_path(args.dataset, args.recipe), record)
    checkpoint.save_curves(history_path(args.dataset, args.recipe), params.seeds, result.curves)
    print(f"train {args.dataset}/{args.recipe}: seeds {', '.join(map(str, params.seeds))}, "
          f"MLflow runs {', '.join(run_ids)}")


if __name__ == "__main__":
    main()
