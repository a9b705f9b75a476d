"""Stage train: every seed of one recipe on one dataset, trained at once.

    python -m pipeline.stages.train moons l2

Writes models/<dataset>/<recipe>/: model.pt (all seeds' networks),
training.json (per seed: steps taken, the techniques' figures), history.csv
(per seed: the learning curves), weights_during_training.npz (every seed's
weights at steps 0, 1, 3, 10, 30, ...) and boundary_during_training/ (points
in the plane: each seed's decision boundary as it formed). Same params, same
files, byte for byte: a retrain that changes nothing reruns nothing downstream.
"""

from __future__ import annotations

import argparse

from pipeline.config import load_params
from pipeline.core.atomic import all_or_none, write_json
from pipeline.core.errors import cli
from pipeline.core.paths import history_path, model_path, snapshots_dir, training_record_path, weights_path
from pipeline.data.splits import load_splits
from pipeline.engine import checkpoint
from pipeline.engine.fit import Member
from pipeline.usecases.training import save_snapshots, save_weights, train


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", help="a key of datasets in params.yaml")
    parser.add_argument("recipe", help="a key of suite in params.yaml")
    args = parser.parse_args(argv)
    params = load_params()
    params.dataset(args.dataset)
    recipe = params.recipe(args.recipe)
    splits = load_splits(args.dataset)
    training = train([Member(seed, recipe) for seed in params.seeds], params.model, params.trainer, splits,
                     progress="long")

    result = training.result
    outputs = [path(args.dataset, args.recipe)
               for path in (model_path, training_record_path, history_path, weights_path, snapshots_dir)]
    model, record, history, weights, snapshots = outputs
    with all_or_none(*outputs):
        checkpoint.save(training.trained, model)
        write_json(record, {str(seed): {"steps": steps, **figures} for seed, steps, figures
                            in zip(params.seeds, result.steps, result.figures)})
        checkpoint.save_curves(history, params.seeds, result.curves)
        save_weights(weights, training.weights)
        save_snapshots(snapshots, params.seeds, training.snapshots)
    print(f"train {args.dataset}/{args.recipe}: seeds {', '.join(map(str, params.seeds))}, "
          f"{', '.join(map(str, sorted(set(result.steps))))} steps")


if __name__ == "__main__":
    main()
