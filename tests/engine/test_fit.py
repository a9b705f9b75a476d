"""fit() leaves no global state behind, whether training ends or is
interrupted: torch's deterministic flags and the process's Ctrl-C handler
are as they were before it (a notebook's interrupt button keeps working)."""

from __future__ import annotations

import signal

import pytest
import pytorch_lightning as pl
import torch
from test_progress import TINY, TRAINER, splits  # a tiny network on 40 moons points

from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig


class CtrlC(pl.Callback):
    """Ctrl-C in the middle of training, as the terminal delivers it."""

    def on_train_epoch_end(self, trainer, module):
        raise KeyboardInterrupt


def global_state() -> tuple:
    return (signal.getsignal(signal.SIGINT), torch.are_deterministic_algorithms_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory)


def test_a_finished_fit_leaves_the_global_state_as_it_was():
    before = global_state()
    fit([Member(0, RecipeConfig())], TINY, TRAINER, splits())
    assert global_state() == before


def test_an_interrupted_fit_is_a_keyboard_interrupt_and_leaves_ctrl_c_working():
    """Lightning ignores SIGINT while it cleans up after a KeyboardInterrupt
    (a second Ctrl-C would cut the clean-up short), then puts back the
    handler it found; were it left ignored, the next Ctrl-C would do nothing."""
    before = global_state()
    assert before[0] is signal.default_int_handler  # tests/conftest.py gives every test Python's own
    with pytest.raises(KeyboardInterrupt):
        fit([Member(0, RecipeConfig())], TINY, TRAINER, splits(), callbacks=[CtrlC()])
    assert global_state() == before
