"""The report's content on hand-made metrics: intervals over seeds, paired
differences against the baseline, verdicts that never rank noise, the
choice on dev, the diagnosis and the key figures."""

from __future__ import annotations

import pytest

from pipeline.analysis.summary import diagnose, key_figure, markdown, mean_document, selected_on_dev, summarize
from pipeline.config import ReportConfig
from pipeline.techniques import RecipeConfig

THRESHOLDS = ReportConfig(high_bias_error=0.15, high_variance_gap=0.05)
SUITE = {"baseline": RecipeConfig(), "l1": RecipeConfig.model_validate({"l1": {"strength": 1.0}}),
         "l2": RecipeConfig.model_validate({"l2": {"strength": 1.0}})}


def metrics(train: float, dev: float | None, test: float, **weights) -> dict:
    m = {"train": {"accuracy": train, "loss": 0.1}, "test": {"accuracy": test, "loss": 0.2}}
    if dev is not None:
        m["dev"] = {"accuracy": dev, "loss": 0.2}
    m["weights"] = {"sparsity": 0.02, "squared_weight_sum": 12.34, "max_column_norm": 3.21, **weights}
    m["training"] = {"steps": 1000, "initial_cost": 0.7}
    return m


@pytest.mark.parametrize("train, dev, expected", [
    (0.99, 0.83, "high variance (overfitting)"),
    (0.80, 0.79, "high bias (underfitting)"),
    (0.80, 0.70, "high bias and high variance"),
    (0.92, 0.90, "appropriate"),
    (0.90, 0.85, "appropriate"),  # a gap of exactly the threshold is not above it
])
def test_diagnosis_from_train_and_held_out_errors(train, dev, expected):
    assert diagnose(train, dev, THRESHOLDS) == expected


def test_key_figures_name_what_each_technique_did():
    m = metrics(0.9, 0.9, 0.9, sparsity=0.87)
    m["training"] |= {"stopped_step": 350, "best_step": 100}
    assert key_figure(SUITE["l1"], m) == "sparsity 87%"
    assert key_figure(RecipeConfig.model_validate({"early_stopping": {"patience": 5}}), m) == \
        "stopped at step 350 (best 100)"
    both = RecipeConfig.model_validate({"dropout": {"keep_prob": [0.5, 0.8], "mask": "fixed"}, "max_norm": {"c": 1}})
    assert key_figure(both, m) == "max column norm 3.21 (c = 1); keep 0.5/0.8, fixed masks"
    assert key_figure(RecipeConfig(), m) == "sum W^2 12.3, max column norm 3.21"


def test_mean_document_averages_every_number_over_seeds():
    mean = mean_document([metrics(0.9, 0.8, 0.7, sparsity=0.1), metrics(0.8, 0.6, 0.5, sparsity=0.3)])
    assert mean["train"]["accuracy"] == pytest.approx(0.85) and mean["weights"]["sparsity"] == pytest.approx(0.2)


RUNS = {  # five seeds; l2 beats baseline on every seed, l1 is inside the noise
    "baseline": [metrics(0.99, 0.86, t) for t in (0.86, 0.88, 0.85, 0.87, 0.86)],
    "l1": [metrics(0.95, 0.87, t, sparsity=0.9) for t in (0.88, 0.86, 0.86, 0.87, 0.85)],
    "l2": [metrics(0.94, d, t) for d, t in zip((0.92, 0.93, 0.92, 0.91, 0.93), (0.89, 0.91, 0.88, 0.90, 0.89))],
}


def test_recipes_are_compared_with_the_baseline_seed_by_seed():
    summary = summarize(RUNS, SUITE, THRESHOLDS)
    assert "test_accuracy_vs_baseline" not in summary["baseline"]
    l2 = summary["l2"]
    assert l2["seeds"] == 5 and l2["test_accuracy"]["mean"] == pytest.approx(0.894)
    assert l2["test_accuracy_vs_baseline"]["mean"] == pytest.approx(0.03)
    assert l2["verdict"] == "higher"
    assert summary["l1"]["verdict"] == "not separated"
    assert summary["l1"]["test_accuracy_vs_baseline"]["ci95_low"] < 0 < summary["l1"]["test_accuracy_vs_baseline"][
        "ci95_high"]
    assert summary["baseline"]["diagnosis"] == "high variance (overfitting)"
    assert summary["l1"]["key_figure"] == "sparsity 90%"


def test_the_choice_on_dev_and_what_it_is_not_separated_from():
    choice = selected_on_dev(RUNS)
    assert choice == {"recipe": "l2", "not_separated_on_dev": []}
    close = dict(RUNS, l1=[metrics(0.95, d, 0.87) for d in (0.93, 0.92, 0.91, 0.92, 0.91)])
    assert selected_on_dev(close)["not_separated_on_dev"] == ["l1"]
    no_dev = {name: [metrics(0.9, None, 0.9)] for name in RUNS}
    assert selected_on_dev(no_dev) is None


def test_verdicts_are_holms_over_the_datasets_comparisons():
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    # three more recipes whose raw intervals exclude 0, but only just
    barely = [0.875, 0.885, 0.86, 0.875, 0.865]  # +0.7 points on average over the baseline, p = 0.016
    runs = dict(RUNS, **{f"l2_{i}": [metrics(0.94, 0.9, t) for t in barely] for i in range(3)})
    suite = dict(SUITE, **{f"l2_{i}": SUITE["l2"] for i in range(3)})
    summary = summarize(runs, suite, THRESHOLDS)
    tests = {name: [r["test"]["accuracy"] for r in runs[name]] for name in runs}
    compared = [name for name in runs if name != "baseline"]
    for name in ("l1", "l2_0"):
        assert summary[name]["p_value"] == pytest.approx(stats.ttest_rel(tests[name], tests["baseline"]).pvalue,
                                                         rel=1e-12)
    assert summary["l2"]["p_value"] == 0.0  # +3 points on every seed
    adjusted = multipletests([summary[name]["p_value"] for name in compared], method="holm")[1]
    assert [summary[name]["p_value_holm"] for name in compared] == pytest.approx(adjusted, rel=1e-12)
    # adjusted for five comparisons, the barely-there recipes are not separated; l2 still is
    assert summary["l2_0"]["test_accuracy_vs_baseline"]["ci95_low"] > 0  # raw: separated
    assert summary["l2_0"]["p_value"] < 0.05 < summary["l2_0"]["p_value_holm"]
    assert summary["l2_0"]["verdict"] == "not separated" and summary["l2"]["verdict"] == "higher"


def test_each_recipe_says_its_chance_to_beat_the_baseline_and_the_seeds_it_would_need():
    summary = summarize(RUNS, SUITE, THRESHOLDS)
    assert summary["l2"]["beats_baseline"]["mean"] == 1.0  # higher on all five seeds
    assert summary["l1"]["beats_baseline"]["mean"] == pytest.approx(0.5)  # 2 wins, 2 losses, 1 tie of 5
    assert summary["l2"]["seeds_needed"] <= 5
    assert summary["l1"]["seeds_needed"] is None  # the same mean as the baseline: no number of seeds separates it
    assert "beats_baseline" not in summary["baseline"]


def test_markdown_states_intervals_the_test_size_and_never_ranks_noise():
    summary = summarize(RUNS, SUITE, THRESHOLDS)
    paths = {"l2": {"sweeps": "l2.strength", "selected": 1.0, "dev_accuracy": summary["l2"]["dev_accuracy"],
                    "test_accuracy": summary["l2"]["test_accuracy"],
                    "one_se": {"strength": 3.0, "dev_accuracy": summary["l1"]["dev_accuracy"],
                               "test_accuracy": summary["l1"]["test_accuracy"]}}}
    figures = ["figures/decision_boundaries.png", "figures/weight_histograms.png"]
    page = markdown("moons", summary, selected_on_dev(RUNS), paths, 5000, THRESHOLDS, figures)
    assert page.startswith("# moons: regularization recipes compared over 5 seeds")
    # sampling error of 86.4% on 5 000: sqrt(0.864 * 0.136 / 5000) = 0.48 points; each recipe's seeds spread 1.14
    assert "Test set: 5000 examples" in page
    assert ("near 86% by a standard error of 0.48 points, below the spread between seeds (standard deviation "
            "1.14 points, median over recipes)") in page
    assert "adjusted for the 2 comparisons with the baseline (Holm)" in page
    # l2 beats the baseline by 3 points on every seed: p 0, all five seeds won (Wilson: 57 to 100%), 2 seeds suffice
    assert ("| l2 | 94.0% [94.0, 94.0] | 92.2% [91.2, 93.2] | 89.4% [88.0, 90.8] | +3.0 [+3.0, +3.0] pts | 0, 0 "
            "| higher than baseline | 100% [57, 100] | 2 | +4.6 pts | appropriate | sum W^2 12.3 |") in page
    assert "| l1 |" in page and "| not separated |" in page
    assert "**Chosen on dev: l2**" in page
    assert ("| l2 | l2.strength | 1 | 92.2% [91.2, 93.2] | 89.4% [88.0, 90.8] | 3 | 87.0% [87.0, 87.0] "
            "| 86.4% [85.0, 87.8] | [paths/l2.png](paths/l2.png) |") in page
    assert "![decision boundaries (first seed)](figures/decision_boundaries.png)\n\n" \
           "![weight histograms (first seed)](figures/weight_histograms.png)\n" in page
    assert "## Figures" not in markdown("moons", summary, None, {}, 5000, THRESHOLDS, [])
