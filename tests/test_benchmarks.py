"""The speed benchmark runs and prints its JSON line, so it cannot rot unseen.
It measures nothing here: a few steps only, and no timing is asserted."""

from __future__ import annotations

import json
import sys

from conftest import ROOT, run

KEYS = {"trainer_steps_per_s", "fused_steps_per_s", "torch_steps_per_s", "numpy_steps_per_s",
        "batched_model_steps_per_s", "fused_model_steps_per_s", "batched_models", "vmap_model_steps_per_s"}


def test_trainer_speed_benchmark_prints_its_figures():
    result = run([sys.executable, "benchmarks/trainer_speed.py", "--steps", "40", "--models", "4", "--rounds", "1"],
                 ROOT)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures) == KEYS
    assert figures["batched_models"] == 4
    assert all(figures[key] > 0 for key in KEYS)
