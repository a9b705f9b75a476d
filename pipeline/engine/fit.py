"""fit(): train K networks of one architecture at once, one Lightning Trainer for all."""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, replace

import pytorch_lightning as pl
import torch
from pytorch_lightning.accelerators import CUDAAccelerator, MPSAccelerator

from pipeline.config import ModelConfig, TrainerConfig
from pipeline.core.errors import PipelineError
from pipeline.data.splits import Splits
from pipeline.engine.module import BatchTraining
from pipeline.engine.network import StackedLinear, StackedNetwork, as_tensors, make_network
from pipeline.engine.progress import LONG_SECONDS, StepLines, StepProgressBar
from pipeline.engine.size import check_fits
from pipeline.techniques import Batch, RecipeConfig

for _name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
    logging.getLogger(_name).setLevel(logging.WARNING)
# Raised by Lightning's own internals with current torch; nothing for users to act on.
warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*")


@dataclass(frozen=True)
class Member:
    """One of the K networks: its seed, its recipe, and how messages name it."""

    seed: int
    recipe: RecipeConfig
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"seed {self.seed}"


@dataclass
class FitResult:
    net: StackedNetwork  # the K trained networks, in evaluation mode
    batch: Batch
    steps: list[int]  # per network: where it stopped (max_steps unless a rule stopped it)
    curves: list[list[dict[str, float]]]  # per network: its evaluations, step 0 first
    figures: list[dict[str, float]]  # per network: initial_cost and its techniques' figures
    states: dict[int, dict[str, torch.Tensor]]  # at each step asked for: net.state_dict() then, on the CPU
    weights: dict[int, list[torch.Tensor]]  # the same steps: every weight matrix, (K, in, out), from states


def dtype_of(trainer: TrainerConfig) -> torch.dtype:
    return torch.float64 if trainer.precision == "64-true" else torch.float32


def check_accelerator(trainer: TrainerConfig) -> None:
    """Lightning's own message for a missing GPU spans lines and names its classes."""
    if trainer.accelerator == "gpu" and not (CUDAAccelerator.is_available() or MPSAccelerator.is_available()):
        raise PipelineError("trainer.accelerator=gpu but no GPU is available (PyTorch sees no CUDA or MPS "
                            "device): use trainer.accelerator=auto or cpu")


def fit(members: list[Member], model: ModelConfig, trainer: TrainerConfig, splits: Splits,
        callbacks: list[pl.Callback] = (), progress: str | None = None, weight_steps: list[int] = ()) -> FitResult:
    """Train one network per member; a network's result depends only on its own
    member, data and config, not on the others, and is the same bit for bit
    on the same machine. progress shows the steps done on stdout: "bar" (a
    terminal), "lines" (a log), "long" (lines once training has lasted
    LONG_SECONDS: DVC stages), None (nothing). weight_steps: the steps at
    which every network's state is recorded (0 is before the first). The
    networks train on trainer.accelerator's device and come back on the CPU."""
    check_accelerator(trainer)
    dtype = dtype_of(trainer)
    # deterministic=True switches torch's global deterministic mode on, which
    # also fills every new tensor with NaN in case it is read uninitialized; no
    # op here does that, and the filling cost a tenth of the training time.
    # Both flags go back afterwards: fit() leaves no global state behind.
    previous = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    lightning = pl.Trainer(
        accelerator=trainer.accelerator,
        devices=1,
        max_epochs=math.ceil(trainer.max_steps / trainer.eval_every),  # an epoch is eval_every steps
        logger=False,
        callbacks=[*callbacks, *{"bar": [StepProgressBar(trainer.max_steps)],
                                 "lines": [StepLines(trainer.max_steps)],
                                 "long": [StepLines(trainer.max_steps, LONG_SECONDS)]}.get(progress, [])],
        enable_checkpointing=False,
        enable_progress_bar=progress == "bar",
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
        precision=trainer.precision,
    )
    # Everything is built on the device Lightning chose, data included: the
    # engine's tensors live in the module (no DataLoader for Lightning to move),
    # and a tensor left on the CPU would meet a GPU tensor in the first step.
    device = lightning.strategy.root_device
    batch = Batch(seeds=tuple(m.seed for m in members), n_features=splits.n_features, hidden=tuple(model.hidden),
                  n_train=len(splits.y["train"]), dtype=dtype, image_shape=splits.image_shape, device=device)
    outputs = 1 if splits.n_classes == 2 else splits.n_classes
    if device.type == "cpu":  # a GPU's memory is its own
        check_fits(batch.k, [batch.n_features, *batch.hidden, outputs], batch.n_train, trainer.batch_size,
                   dtype.itemsize, len(weight_steps))
    try:
        torch.utils.deterministic.fill_uninitialized_memory = False
        net, techniques = make_network(batch, splits.n_classes, model, [m.recipe for m in members])
        module = BatchTraining(net, techniques, trainer, batch,
                               train=as_tensors(splits.X["train"], splits.y["train"], dtype, device),
                               dev=as_tensors(splits.X["dev"], splits.y["dev"], dtype, device),
                               labels=[m.name for m in members], weight_steps=frozenset(weight_steps))
        try:
            lightning.fit(module)
        except SystemExit:
            # Lightning turns Ctrl-C into exit(1) after its own clean-up; callers
            # (and users) should see the interruption it was.
            if lightning.interrupted:
                raise KeyboardInterrupt from None
            raise
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.utils.deterministic.fill_uninitialized_memory = previous[1]
    net.cpu().eval()  # evaluation, figures and MLflow's model take it from here
    technique_figures = [t.figures() for t in techniques]
    figures = [{"initial_cost": module.initial_cost[k].item()} | {key: value for per_technique in technique_figures
                                                                   for key, value in per_technique[k].items()}
               for k in range(batch.k)]
    states = {step: {name: tensor.cpu() for name, tensor in state.items()}
              for step, state in sorted(module.states.items())}
    matrices = [name for name, layer in net.named_children() if isinstance(layer, StackedLinear)]
    return FitResult(net, replace(batch, device=torch.device("cpu")), [int(s) for s in module.stopped_step],
                     module.curves(), figures, states,
                     {step: [state[f"{name}.weight"] for name in matrices] for step, state in states.items()})
