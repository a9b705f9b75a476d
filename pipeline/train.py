"""One ad-hoc run outside DVC, with Hydra overrides of conf/train.yaml:

    python -m pipeline.train dataset=moons regularization=[l2,dropout] trainer.max_steps=500
    python -m pipeline.train regularization=[l1] 'seeds=[0,1,2,3,4]'    # five seeds at once
    python -m pipeline.train -m 'regularization=[l1],[l2]' 'seeds=[0,1,2]'    # a sweep: one job per recipe
    python -m pipeline.train -m hydra/launcher=joblib hydra.launcher.n_jobs=2 'regularization=[l1],[l2]'
    python -m pipeline.train -m hydra/launcher=submitit_slurm hydra.launcher.partition=cpu 'regularization=[l1],[l2]'

makes the data in memory, trains every seed's network at once (with a bar of
steps on a terminal), evaluates them and logs each as an MLflow run (tagged
source=adhoc) in the experiment <dataset>-adhoc, apart from the pipeline's
runs; it prints each run's address in the MLflow UI. A sweep is one parent
run in the experiment adhoc-sweeps with every job's runs nested under it
(pipeline.tracking.sweeps). Nothing is written into the repository.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

import torch
import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.analysis.statistics import interval
from pipeline.analysis.weights import statistics_during_training
from pipeline.config import AdhocConfig
from pipeline.core.errors import PipelineError, cli
from pipeline.core.schema import validate
from pipeline.data.splits import SPLITS, checksum, split_source
from pipeline.engine.fit import Member
from pipeline.engine.network import Probabilities
from pipeline.params import bad_config, config_dir
from pipeline.tracking import sweeps
from pipeline.tracking.runs import NetworkRecord, log_network, seed_run_name, training_input
from pipeline.tracking.store import (PARENT, common_tags, connect, experiment_id, failing, flatten, run_url,
                                     start_runs, tracking_uri, ui_command)
from pipeline.usecases.evaluation import evaluate_and_draw
from pipeline.usecases.training import train

CONFIG_NAME = "train"
# Hydra creates a directory for every run and job even when it writes nothing
# into it; conf/train.yaml points them at a temporary one, named by this variable.
HYDRA_DIR_VARIABLE = "ADHOC_HYDRA_DIR"


@cli
def job(composed: DictConfig) -> None:
    """One Hydra job: train, evaluate and log every seed of one composed config.
    Its errors end the process with one line (cli), in a sweep too, where
    Hydra would add a line of its own and a traceback."""
    dataset_name = HydraConfig.get().runtime.choices["dataset"]
    try:
        data = OmegaConf.to_container(composed, resolve=True)
    except OmegaConfBaseException as error:
        raise bad_config(error) from None
    regularization = data.pop("regularization", {})
    config = validate(AdhocConfig, {**data, "dataset_name": dataset_name, "regularization": regularization,
                                    "recipe": "+".join(regularization) or "baseline"},
                      "conf/train.yaml with overrides")
    splits = split_source(dataset_name, config.dataset.source, config.dataset.split)
    tags = common_tags(dataset_name, "adhoc", data_sha256=checksum(splits), recipe=config.recipe)
    run_config = config.model_dump(mode="json", exclude={"seeds", "analysis"}, exclude_none=True)
    if sweep := sweeps.sweep_run():  # nested under the sweep's run, which its launching process ends
        experiment, tags = sweeps.EXPERIMENT, tags | {PARENT: sweep}
    else:
        experiment = f"{dataset_name}-adhoc"
    # A bar on a terminal, lines in a log; parallel jobs (Hydra's joblib launcher) share one stdout: neither.
    progress = None if multiprocessing.parent_process() else "bar" if sys.stdout.isatty() else "lines"
    client = connect()
    configs = [run_config | {"seed": seed} for seed in config.seeds]
    run_ids = start_runs(client, experiment, [seed_run_name(config.recipe, seed) for seed in config.seeds],
                         [tags | {"kind": "seed", "seed": str(seed)} for seed in config.seeds],
                         [flatten(c) for c in configs])
    with failing(client, run_ids), tempfile.TemporaryDirectory() as tmp:  # a failure or a signal: runs FAILED
        training = train([Member(seed, config.regularization) for seed in config.seeds], config.model,
                         config.trainer, splits, progress=progress)
        trained, result = training.trained, training.result
        directories = [Path(tmp) / str(seed) for seed in config.seeds]
        for directory in directories:
            directory.mkdir()
        documents = evaluate_and_draw(trained, splits, config.analysis.sparsity_threshold, config.recipe, result.curves,
                                      [{"steps": steps, **figures} for steps, figures in zip(result.steps, result.figures)],
                                      directories)
        example = torch.as_tensor(splits.X["train"][:5], dtype=trained.net.dtype)
        dataset = training_input(dataset_name, splits)
        during_training = statistics_during_training(training.weights, config.analysis.sparsity_threshold)
        for k, (seed, run_id) in enumerate(zip(config.seeds, run_ids)):
            statistics = {step: networks[k] for step, networks in during_training.items()}
            record = NetworkRecord(config.recipe, seed, configs[k], result.curves[k], documents[k], directories[k],
                                   training.snapshots[k], statistics, Probabilities(trained.single(k)))
            log_network(client, run_id, record, example, dataset)

    uri, adhoc_experiment_id = tracking_uri(), experiment_id(client, experiment)
    lines = [f"ad-hoc {dataset_name}/{config.recipe}: MLflow experiment {experiment} in {uri}"]
    for seed, document, run_id in zip(config.seeds, documents, run_ids):
        accuracies = "  ".join(f"{part} {document[part]['accuracy']:.4f}" for part in SPLITS if part in document)
        weights = document["weights"]
        lines += [(f"  seed {seed}: {accuracies}  sparsity {weights['sparsity']:.1%} "
                   f"({weights['zero_fraction']:.1%} exactly 0)  "
                   f"max column norm {weights['max_column_norm']:.2f}"),
                  f"    {run_url(uri, adhoc_experiment_id, run_id)}"]
    if len(documents) > 1:
        test = interval([document["test"]["accuracy"] for document in documents])
        lines.append(f"  test accuracy over {test['n']} seeds: {test['mean']:.4f}, "
                     f"95% interval [{test['ci95_low']:.4f}, {test['ci95_high']:.4f}]")
    if command := ui_command(uri):
        lines.append(f"  to open these links, start the UI: {command}")
    # One write, flushed: jobs of a parallel sweep print into the same stdout.
    print("\n".join(lines), flush=True)


def job_error(error: RuntimeError) -> PipelineError | None:
    """The one line a submitit job ended with (a user error, a signal), from
    the error submitit raises in the launching process for a job that left no
    result: its message quotes the job's stderr. None for other errors."""
    from submitit.core.utils import UncompletedJobError

    if not isinstance(error, UncompletedJobError):
        return None
    lines = [line for line in str(error).splitlines() if line.startswith("error: ")]
    return PipelineError(lines[-1].removeprefix("error: ")) if lines else None


@cli
def main(argv: list[str] | None = None) -> None:
    """Hydra's command line for conf/train.yaml: overrides, -m for a sweep,
    --help, --cfg job. argv stands for sys.argv[1:], which Hydra reads."""
    arguments = sys.argv[1:] if argv is None else argv
    conf = config_dir(CONFIG_NAME)
    connect()  # creates the SQLite store before parallel jobs could race to; an unreachable server fails here
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors instead of printing them: one line below
    command_line = sys.argv
    with tempfile.TemporaryDirectory(prefix="adhoc-hydra-") as scratch:
        os.environ[HYDRA_DIR_VARIABLE] = scratch  # also for the workers of a parallel sweep
        sys.argv = [command_line[0], *arguments]
        try:
            with sweeps.failing_sweep():  # a failed job ends the sweep's run FAILED
                hydra.main(config_path=str(conf), config_name=CONFIG_NAME, version_base=None)(job)()
        except (HydraException, OmegaConfBaseException) as error:
            raise bad_config(error) from None
        except RuntimeError as error:
            if (failed := job_error(error)) is None:
                raise
            raise failed from None
        finally:
            sys.argv = command_line


if __name__ == "__main__":
    main()
