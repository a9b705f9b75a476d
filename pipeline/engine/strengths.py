"""Regularization strengths out of all proportion to the data, refused before
the first step.

Such a strength does not fail loudly on its own: at L2 1e6 every weight goes
to zero, and at 1e30 Adam's squared gradient overflows float32, so every
update is 0 and the initial weights come back unchanged; both looked like
normal runs.
"""

from __future__ import annotations

import torch

from pipeline.core.errors import PipelineError
from pipeline.techniques import Technique

# How many times the data loss a network's penalty may be at step 0. A network
# already learns nothing at about 50 (moons, L2 100 under Adam); the project's
# paths reach 62 at their top (L1 30 on moons or circles, 200 training points:
# 42 to 62 over eight seeds; L2 30: 10 to 16) and the presets stay near 1
# (mnist_article L1 2.1, L2 0.11; football L2 0.05). L2 1e6 on moons is 4e5.
MAX_PENALTY_RATIO = 1e4


def _words(techniques: list[Technique], k: int) -> str:
    """Network k's strengths as its config names them: "l2.strength 1e+30"."""
    def value(v) -> str:
        return "[" + ", ".join(f"{x:g}" for x in v) + "]" if isinstance(v, list) else f"{v:g}"

    return ", ".join(f"{t.name}.{key} {value(v)}" for t in techniques for key, v in t.strength_values(k).items())


@torch.no_grad()
def check_strengths(net, techniques: list[Technique], train_loss: torch.Tensor, lr: float,
                    labels: list[str]) -> None:
    """Raise PipelineError naming the first network whose regularization can
    only leave it zero weights, whatever the data says."""
    penalties = {t: p for t in techniques if (p := t.penalty(net)) is not None}
    if penalties:
        ratio = sum(penalties.values()) / train_loss
        refused = ~(ratio <= MAX_PENALTY_RATIO)  # NaN too
        if refused.any():
            k = int(refused.nonzero()[0])
            raise PipelineError(
                f"the regularization penalty is {ratio[k].item():.2g} times the data loss at step 0 ({labels[k]}): "
                f"the network can only learn zero weights; lower the strengths "
                f"({_words([t for t, p in penalties.items() if p[k] != 0], k)})")
    # Decoupled decay has no penalty to compare: each step takes lr * coefficient
    # of every weight away, so from 1 on it erases the weights (and flips them past it).
    for technique in techniques:
        for _, coefficient in technique.decay(net):
            erased = ~(lr * coefficient < 1)
            if erased.any():
                k = int(erased.nonzero()[0])
                raise PipelineError(
                    f"decoupled weight decay takes trainer.lr * strength / m = {lr * coefficient[k].item():.2g} of "
                    f"every weight each step ({labels[k]}): the network can only learn zero weights; lower the "
                    f"strengths ({_words([technique], k)}) or trainer.lr")
    # The proximal L1 step has no penalty either: each step moves every weight
    # lr * strength/m towards zero, so beyond a network's largest initial weight
    # it zeroes them all at the first step.
    for technique in techniques:
        for parameter, threshold in technique.shrink(net):
            largest = parameter.abs().reshape(len(threshold), -1).amax(1)
            erased = ~(lr * threshold < largest)
            if erased.any():
                k = int(erased.nonzero()[0])
                raise PipelineError(
                    f"the proximal L1 step takes trainer.lr * strength / m = {lr * threshold[k].item():.2g} off "
                    f"every weight each step, more than the largest initial weight ({largest[k].item():.2g}; "
                    f"{labels[k]}): the network can only learn zero weights; lower the strengths "
                    f"({_words([technique], k)}) or trainer.lr")
