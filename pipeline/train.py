"""Train one recipe on one dataset and track it in MLflow.

In the pipeline (a DVC stage, reading params.yaml):

    python -m pipeline.train --dataset moons --recipe l2

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
from pipeline.config import PARAMS_FILE, RunConfig, load_params, validate
from pipeline.datasets import Splits, check, checksum, load_splits, materialize
from pipeline.errors import cli
from pipeline.evaluate import boundary_path, evaluate_and_log, model_path, run_record_path
from pipeline.model import MLP, Probabilities, save_network
from pipeline.params import compose
from pipeline.tracking import connect, experiment_id, flatten, pipeline_run_id, run_tags, tracking_uri


def train_and_log(run: RunConfig, splits: Splits, tags: dict[str, str]) -> tuple[MLP, str]:
    """Fit the run's network with Lightning's MLFlowLogger and log the resolved
    config and the model (with a signature) into the same MLflow run."""
    from pytorch_lightning.loggers import MLFlowLogger

    from pipeline.training import fit

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
    return result.net, logger.run_id


def log_model(run_id: str, net: MLP, splits: Splits) -> None:
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    example = torch.as_tensor(splits.X["train"][:5], dtype=torch.float32)
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


def pipeline_main(dataset: str, recipe: str) -> None:
    run = load_params().run(dataset, recipe)
    splits = load_splits(dataset)
    tags = run_tags(dataset, recipe, checksum(splits), source="dvc", group=pipeline_run_id(PARAMS_FILE))
    net, run_id = train_and_log(run, splits, tags)
    save_network(net, splits.n_features, run.model, run.regularization, model_path(dataset, recipe))
    write_json(run_record_path(dataset, recipe), {"run_id": run_id, "experiment": dataset})
    print(f"train {dataset}/{recipe}: MLflow run {run_id}")


def adhoc_main(overrides: list[str]) -> None:
    """Compose conf/train.yaml, make the data in memory, train, evaluate, log."""
    from pipeline.split import split

    data = compose("train", overrides, with_choices=True)
    dataset_name = data.pop("_choices")["dataset"]
    regularization = data.pop("regularization", {})
    run = validate(
        RunConfig,
        {**data, "dataset_name": dataset_name, "recipe": "+".join(regularization) or "baseline",
         "regularization": regularization},
        "conf/train.yaml with overrides",
    )
    splits = split(check(materialize(run.dataset.source), run.dataset_name), run.dataset.split)
    net, run_id = train_and_log(run, splits, run_tags(run.dataset_name, run.recipe, checksum(splits), source="adhoc"))
    with tempfile.TemporaryDirectory() as tmp:
        metrics = evaluate_and_log(connect(), run_id, net, splits, run.recipe, Path(tmp) / boundary_path("", "").name)
    print(f"ad-hoc {run.dataset_name}/{run.recipe}: MLflow run {run_id} in {tracking_uri()}")
    for part, values in metrics.items():
        print(f"  {part:5s} accuracy {values['accuracy']:.4f}  loss {values['loss']:.4f}")


@cli
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if all("=" in arg and not arg.startswith("-") for arg in argv):  # Hydra overrides, or none
        return adhoc_main(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="a key of datasets in params.yaml")
    parser.add_argument("--recipe", required=True, help="a key of suite in params.yaml")
    args = parser.parse_args(argv)
    pipeline_main(args.dataset, args.recipe)


if __name__ == "__main__":
    main()
