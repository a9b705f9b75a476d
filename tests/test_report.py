"""The report's diagnosis and key figures, on hand-made metrics."""

from __future__ import annotations

import pytest

from pipeline.config import DropoutConfig, EarlyStoppingConfig, L1Config, MaxNormConfig, RecipeConfig, ReportConfig
from pipeline.report import diagnose, key_figure, markdown, summarize

THRESHOLDS = ReportConfig(high_bias_error=0.15, high_variance_gap=0.05)


def metrics(train: float, dev: float | None, test: float, **weights) -> dict:
    m = {"train": {"accuracy": train, "loss": 0.1}, "test": {"accuracy": test, "loss": 0.2}}
    if dev is not None:
        m["dev"] = {"accuracy": dev, "loss": 0.2}
    m["weights"] = {"sparsity": 0.02, "squared_weight_sum": 12.34, "max_column_norm": 3.21, **weights}
    m["training"] = {"steps": 1000}
    return m


@pytest.mark.parametrize("train, dev, expected", [
    (0.99, 0.83, "high variance (overfitting)"),
    (0.80, 0.79, "high bias (underfitting)"),
    (0.80, 0.70, "high bias and high variance"),
    (0.92, 0.90, "appropriate"),
    (0.90, 0.85, "appropriate"),  # a gap of exactly the threshold is not above it
])
def test_diagnosis_from_train_and_dev_errors(train, dev, expected):
    assert diagnose(metrics(train, dev, 0.5), THRESHOLDS) == expected


def test_diagnosis_falls_back_to_test_without_a_dev_set():
    assert diagnose(metrics(0.99, None, 0.80), THRESHOLDS) == "high variance (overfitting)"
    assert diagnose(metrics(0.99, None, 0.97), THRESHOLDS) == "appropriate"


def test_key_figures_name_what_each_technique_did():
    m = metrics(0.9, 0.9, 0.9, sparsity=0.87)
    m["training"] |= {"stopped_step": 350, "best_step": 100}
    assert key_figure(RecipeConfig(l1=L1Config(strength=1.0)), m) == "sparsity 87%"
    assert key_figure(RecipeConfig(early_stopping=EarlyStoppingConfig(patience=5)), m) == \
        "stopped at step 350 (best 100)"
    both = RecipeConfig(dropout=DropoutConfig(keep_prob=[0.5, 0.8], mask="fixed"), max_norm=MaxNormConfig(c=1.0))
    assert key_figure(both, m) == "max column norm 3.21; keep 0.5/0.8, fixed masks"
    assert key_figure(RecipeConfig(), m) == "sum W^2 12.3, max column norm 3.21"


def test_summary_table_has_a_row_per_recipe_with_gap_and_key_figure():
    suite = {"baseline": RecipeConfig(), "l1": RecipeConfig(l1=L1Config(strength=1.0))}
    summary = summarize({"baseline": [metrics(0.99, 0.83, 0.86)], "l1": [metrics(0.88, 0.92, 0.91, sparsity=0.99)]},
                        suite, THRESHOLDS)
    assert summary["baseline"]["generalization_gap"] == pytest.approx(0.13)
    table = markdown("moons", summary, THRESHOLDS, "figures/decision_boundaries.png")
    assert "| baseline | 99.0% | 83.0% | 86.0% | +13.0 pts | high variance (overfitting) | sum W^2 12.3" in table
    assert "| l1 | 88.0% | 92.0% | 91.0% | -3.0 pts | appropriate | sparsity 99% |" in table
    assert "![decision boundaries](figures/decision_boundaries.png)" in table


def test_several_seeds_give_mean_and_sample_std():
    suite = {"baseline": RecipeConfig(), "l1": RecipeConfig(l1=L1Config(strength=1.0))}
    runs = {"baseline": [metrics(0.99, 0.83, 0.86), metrics(0.97, 0.85, 0.88), metrics(0.98, 0.81, 0.84)],
            "l1": [metrics(0.88, None, 0.91, sparsity=s) for s in (0.9, 0.95, 1.0)]}
    summary = summarize(runs, suite, THRESHOLDS)
    row = summary["baseline"]
    assert row["seeds"] == 3
    assert row["test_accuracy"] == pytest.approx(0.86) and row["test_accuracy_std"] == pytest.approx(0.02)
    assert row["dev_accuracy"] == pytest.approx(0.83) and row["dev_accuracy_std"] == pytest.approx(0.02)
    assert row["train_accuracy_std"] == pytest.approx(0.01)
    assert summary["l1"]["dev_accuracy"] is None and summary["l1"]["sparsity"] == pytest.approx(0.95)
    table = markdown("mnist5k", summary, THRESHOLDS, None)
    assert "(mean ± std over 3 seeds)" in table
    assert "| baseline | 98.0% ± 1.0 | 83.0% ± 2.0 | 86.0% ± 2.0 | +12.0 pts |" in table
    assert "| l1 | 88.0% ± 0.0 | n/a | 91.0% ± 0.0 |" in table
    assert "![" not in table
