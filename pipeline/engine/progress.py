"""How far training has got, on stdout: a bar on a terminal, plain lines in a
log, and in a DVC stage lines only once training has lasted a while (most
take a second or two; 1 000 seeds take minutes). All count optimizer steps up
to trainer.max_steps and say how long is left; they advance by eval_every
steps, the engine's unit of work."""

from __future__ import annotations

import shutil
import sys
import time

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from tqdm import tqdm

LINES = 10  # a log gets a line each tenth of the steps
LONG_SECONDS = 10.0  # a DVC stage's training says how far it is once it has lasted this long


class StepProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, counting optimizer steps up to max_steps in one
    bar. The stock bar counts each epoch's batches, and here an epoch is one
    batch of eval_every steps: it would show a new 1/1 bar every evaluation."""

    def __init__(self, max_steps: int):
        super().__init__()
        self.max_steps = max_steps

    def init_train_tqdm(self) -> Tqdm:
        # a size fixed at the start: a terminal that reports none (0 x 0:
        # `script`, some containers' ttys) would otherwise get an empty bar
        size = shutil.get_terminal_size()  # 80 x 24 where the terminal says 0
        return Tqdm(desc="training", total=self.max_steps, unit="step", disable=self.is_disabled, leave=True,
                    ncols=size.columns, nrows=size.lines, file=sys.stdout, smoothing=0, bar_format=self.BAR_FORMAT)

    def init_validation_tqdm(self) -> Tqdm:
        return Tqdm(disable=True)  # an evaluation takes milliseconds: no bar of its own

    def on_train_epoch_start(self, *_) -> None:
        pass  # one bar for the whole run

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, *_) -> None:
        self.train_progress_bar.n = pl_module.steps
        self.train_progress_bar.refresh()


class StepLines(pl.Callback):
    """`training: 300/1000 steps (30%), 00:01 elapsed, 00:03 left`, a line
    each time another tenth of the steps is done, and one where training
    stopped if a rule stopped it early; none before after_seconds have passed."""

    FORMAT = "training: {n_fmt}/{total_fmt} steps ({percentage:.0f}%), {elapsed} elapsed, {remaining} left"

    def __init__(self, max_steps: int, after_seconds: float = 0.0):
        self.max_steps, self.after_seconds, self.started, self.shown = max_steps, after_seconds, 0.0, 0

    def on_train_start(self, *_) -> None:
        self.started, self.shown = time.monotonic(), 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, *_) -> None:
        tenth = pl_module.steps * LINES // self.max_steps
        if tenth > self.shown:
            self.shown = tenth
            self.show(pl_module.steps)

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        if self.shown < LINES:  # stopped early
            self.show(pl_module.steps)

    def show(self, steps: int) -> None:
        if time.monotonic() - self.started < self.after_seconds:
            return
        meter = tqdm.format_meter(steps, self.max_steps, time.monotonic() - self.started, bar_format=self.FORMAT)
        print(meter, flush=True)
