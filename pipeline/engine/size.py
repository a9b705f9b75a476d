"""How much memory training K networks at once takes, checked before it
starts: 1 000 seeds of a large network would otherwise grow until the kernel's
OOM killer ends the stage with SIGKILL, which no program can report."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import PipelineError

# Per network and parameter: the weights, their gradients, Adam's two moments,
# and one copy a technique may keep (early stopping's best weights).
WORKING_COPIES = 5
# Per network, row and unit of each layer: its output and its gradient. With these
# counts the estimate came within 6% of the peak memory fit() added, measured over
# four shapes (K 16 to 512, hidden 64 to 1 024 wide, full and mini-batches, float32 and 64).
ACTIVATION_COPIES = 2
EVALUATION_ROWS = 8192  # StackedNetwork.evaluated's block


def training_bytes(k: int, widths: list[int], n_train: int, batch_size: int | None, itemsize: int,
                   recorded_states: int) -> int:
    """An estimate of the memory fit() needs for K networks whose layers
    have these widths (features, hidden..., outputs): parameters with their
    working copies and recorded states, plus a step's activations or an
    evaluation block's, whichever is larger."""
    parameters = sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths, widths[1:]))
    rows = min(batch_size or n_train, n_train)
    units = sum(widths[1:])
    activations = max(rows * ACTIVATION_COPIES, min(n_train, EVALUATION_ROWS)) * units
    return k * itemsize * (parameters * (WORKING_COPIES + recorded_states) + activations)


def available_bytes() -> int | None:
    """What the kernel could give this process without swapping (MemAvailable); None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(k: int, widths: list[int], n_train: int, batch_size: int | None, itemsize: int,
               recorded_states: int) -> None:
    """One line before training, instead of the OOM killer's SIGKILL during it."""
    needed = training_bytes(k, widths, n_train, batch_size, itemsize, recorded_states)
    available = available_bytes()
    if available is not None and needed > available:
        raise PipelineError(f"training {k} networks at once needs about {needed / 2**30:.1f} GiB of memory and "
                            f"{available / 2**30:.1f} GiB are available: use fewer seeds (or strengths in a path), "
                            f"a smaller model (model.hidden), or trainer.batch_size")
