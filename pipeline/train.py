"""Train one recipe on one dataset and track it in MLflow.

In the pipeline (a DVC stage, reading params.yaml):

    python -m pipeline.train --dataset moons --recipe l2 --seed 0

Ad hoc, outside DVC, with Hydra overrides of conf/train.yaml; the run is
trained, evaluated and logged to MLflow, and nothing is written to the
repository:

    python -m pipeline.train dataset=moons regularization=[l2,dropout] trainer.max_steps=500
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import yaml

from pipeline.atomic import write_json
from pipeline.config import PARAMS_FILE, AnalysisConfig, RunConfig, load_params, validate
from pipeline.datasets import SPLITS, Splits, check, checksum, load_splits, materialize
from pipeline.errors import cli
from pipeline.evaluate import evaluate_and_log
from pipeline.model import MLP, Probabilities, save_network
from pipeline.params import compose
from pipeline.paths import model_path, training_record_path
from pipeline.training import FitResult, fit
from pipeline.tracking import connect, experiment_id, flatten, pipeline_run_id, run_tags, tracking_uri


def train_and_log(run: RunConfig, splits: Splits, tags: dict[str, str]) -> tuple[FitResult, str]:
    """Fit the run's network with Lightning's MLFlowLogger and log the resolved
    config and the model (with a signature) into the same MLflow run."""
    from pytorch_lightning.loggers import MLFlowLogger

    client = connect()
    experiment_id(client, run.dataset_name)  # created here, with our artifact location
    logger = MLFlowLogger(
        experiment_name=run.dataset_name,
        run_name=run.recipe,
        tracking_uri=tracking_uri(),
        tags=tags,
    )
    config = run.model_dump(mode="json")
    logger.log_hyperparams(flatten(config))
    result = fit(run, splits, logger)  # Lightning marks the run FAILED if this raises
    try:
        if result.key_figures:
            logger.log_metrics(result.key_figures, step=result.steps)
        client.log_text(logger.run_id, yaml.safe_dump(config, sort_keys=False), "config.yaml")
        log_model(logger.run_id, result.net, splits)
    except BaseException:
        client.set_terminated(logger.run_id, "FAILED")
        raise
    return result, logger.run_id


def log_model(run_id: str, net: MLP, splits: Splits) -> None:
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    example = torch.as_tensor(splits.X["train"][:5], dtype=net.dtype)
    with torch.no_grad():
        signature = infer_signature(example.numpy(), net.predict_proba(example).numpy())
    mlflow.set_tracking_uri(tracking_uri())
    # We chose pickle knowingly (see below); its safety warning is noise here.
    logging.getLogger("mlflow.pytorch").setLevel(logging.ERROR)
    with mlflow.start_run(run_id=run_id):
        mlflow.pytorch.log_model(
            Probabilities(net),
            name="model",
            signature=signature,
            serialization_format="pickle",  # torch.export ("pt2") costs seconds per run
            code_paths=[str(Path(__file__).parent)],  # the model's class lives in this package
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "pydantic>=2"],
        )


def pipeline_main(dataset: str, recipe: str, seed: int) -> None:
    run = load_params().run(dataset, recipe, seed)
    splits = load_splits(dataset)
    tags = run_tags(dataset, recipe, seed, checksum(splits), source="dvc", group=pipeline_run_id(PARAMS_FILE))
    result, run_id = train_and_log(run, splits, tags)
    save_network(result.net, splits.n_features, run.model, run.regularization, model_path(dataset, recipe, seed))
    record = {"run_id": run_id, "steps": result.steps, **result.key_figures}
    write_json(training_record_path(dataset, recipe, seed), record)
    print(f"train {dataset}/{recipe} seed {seed}: MLflow run {run_id}")


def adhoc_main(overrides: list[str]) -> None:
    """Compose conf/train.yaml, make the data in memory, train, evaluate, log."""
    from pipeline.split import split

    data = compose("train", overrides, with_choices=True)
    origin = "conf/train.yaml with overrides"
    dataset_name = data.pop("_choices")["dataset"]
    analysis = validate(AnalysisConfig, data.pop("analysis", None), origin)
    regularization = data.pop("regularization", {})
    run = validate(
        RunConfig,
        {**data, "dataset_name": dataset_name, "recipe": "+".join(regularization) or "baseline",
         "regularization": regularization},
        origin,
    )
    splits = split(check(materialize(run.dataset.source), run.dataset_name), run.dataset.split)
    tags = run_tags(run.dataset_name, run.recipe, run.seed, checksum(splits), "adhoc")
    result, run_id = train_and_log(run, splits, tags)
    training = {"steps": result.steps, **result.key_figures}
    with tempfile.TemporaryDirectory() as tmp:
        metrics = evaluate_and_log(connect(), run_id, result.net, splits, run.recipe, Path(tmp), analysis, training)
    print(f"ad-hoc {run.dataset_name}/{run.recipe}: MLflow run {run_id} in {tracking_uri()}")
    for part in SPLITS:
        if part in metrics:
            print(f"  {part:5s} accuracy {metrics[part]['accuracy']:.4f}  loss {metrics[part]['loss']:.4f}")
    weights = metrics["weights"]
    print(f"  sparsity {weights['sparsity']:.1%}  max column norm {weights['max_column_norm']:.2f}")


@cli
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if all("=" in arg and not arg.startswith("-") for arg in argv):  # Hydra overrides, or none
        return adhoc_main(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="a key of datasets in params.yaml")
    parser.add_argument("--recipe", required=True, help="a key of suite in params.yaml")
    parser.add_argument("--seed", required=True, type=int, help="one of seeds in params.yaml")
    args = parser.parse_args(argv)
    pipeline_main(args.dataset, args.recipe, args.seed)


if __name__ == "__main__":
    main()
