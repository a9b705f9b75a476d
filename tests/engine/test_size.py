"""The memory a training of K networks needs is estimated before it starts,
and a training that cannot fit is refused in one line instead of being
killed by the kernel partway."""

from __future__ import annotations

import subprocess
import sys

from conftest import make_project, run

from pipeline.engine.size import training_bytes
from pipeline.usecases.training import weight_steps

# A fresh interpreter: its peak resident memory before and after one fit(). The
# peak of this address space (VmHWM), not ru_maxrss, which keeps the peak of the
# process before its exec: a pytest worker's, after other tests had grown it.
MEASURE = """
import numpy as np
from pipeline.config import ModelConfig, TrainerConfig
from pipeline.data.splits import Splits
from pipeline.engine.fit import Member, fit
from pipeline.techniques import RecipeConfig
rng = np.random.default_rng(0)
X = {part: rng.normal(size=(n, 20)).astype(np.float32) for part, n in (("train", 2000), ("dev", 200), ("test", 200))}
splits = Splits(X, {part: (x[:, 0] > 0).astype(np.int64) for part, x in X.items()}, np.array([0, 1]))
def peak():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) * 1024
before = peak()
fit([Member(seed, RecipeConfig()) for seed in range(48)], ModelConfig(hidden=[256, 256], activation="relu", init="he"),
    TrainerConfig(optimizer="adam", lr=0.01, max_steps=10, eval_every=10), splits, weight_steps=[0, 1, 3, 10])
print(peak() - before)
"""


def test_the_estimate_is_within_a_fifth_of_the_memory_training_takes():
    grown = int(subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, check=True).stdout)
    estimate = training_bytes(48, [20, 256, 256, 1], 2000, None, 4, 4)
    assert 0.8 < grown / estimate < 1.2, (grown, estimate)


def test_a_training_too_large_for_the_machine_is_refused_in_one_line_before_it_starts(tmp_path):
    project = make_project(tmp_path / "project")
    seeds = ",".join(str(seed) for seed in range(100))
    result = run([sys.executable, "-m", "pipeline.train", "dataset=moons", f"seeds=[{seeds}]",
                  "model.hidden=[4096,4096,4096]"], project, check=False)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    # the test project's moons: 60 training points, 60 steps
    needed = training_bytes(100, [2, 4096, 4096, 4096, 1], 60, None, 4, len(weight_steps(60)))
    assert line.startswith(f"error: training 100 networks at once needs about {needed / 2**30:.1f} GiB of memory "
                           "and "), line
    assert line.endswith(" GiB are available: use fewer seeds (or strengths in a path), a smaller model "
                         "(model.hidden), or trainer.batch_size")
