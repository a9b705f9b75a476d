"""Means and 95% intervals over seeds against their closed forms."""

from __future__ import annotations

import math

import pytest

from pipeline.analysis.statistics import binomial_half_width, interval, paired_difference, verdict

T_975 = {1: 12.706204736, 2: 4.302652730, 4: 2.776445105}  # Student's t quantiles (tables)


def test_interval_is_mean_plus_minus_t_times_the_standard_error():
    values = [0.86, 0.88, 0.84, 0.87, 0.85]
    mean = sum(values) / 5
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 4)
    estimate = interval(values)
    assert estimate["n"] == 5 and estimate["mean"] == pytest.approx(mean)
    assert estimate["ci95_low"] == pytest.approx(mean - T_975[4] * sd / math.sqrt(5), rel=1e-9)
    assert estimate["ci95_high"] == pytest.approx(mean + T_975[4] * sd / math.sqrt(5), rel=1e-9)


def test_two_values_give_a_wide_interval_one_gives_none_equal_ones_a_point():
    two = interval([0.8, 0.9])
    assert two["ci95_high"] - two["ci95_low"] == pytest.approx(2 * T_975[1] * 0.05, rel=1e-9)
    assert interval([0.8]) == {"mean": 0.8, "ci95_low": None, "ci95_high": None, "n": 1}
    assert interval([0.9, 0.9, 0.9]) == {"mean": 0.9, "ci95_low": 0.9, "ci95_high": 0.9, "n": 3}


def test_paired_difference_uses_the_seed_by_seed_differences():
    # the recipes' accuracies spread widely over seeds, but l2 beats baseline by 2 points on every seed
    baseline = [0.80, 0.90, 0.85]
    l2 = [0.82, 0.92, 0.87]
    difference = paired_difference(l2, baseline)
    assert difference["mean"] == pytest.approx(0.02)
    assert difference["ci95_low"] == pytest.approx(0.02) and difference["ci95_high"] == pytest.approx(0.02)
    assert verdict(difference) == "higher"
    # unpaired, the two recipes' intervals overlap almost entirely
    assert interval(l2)["ci95_low"] < interval(baseline)["ci95_high"]
    with pytest.raises(ValueError, match="one to one"):
        paired_difference([0.1, 0.2], [0.1])


@pytest.mark.parametrize("a, b, expected", [
    ([0.91, 0.93, 0.92, 0.94, 0.92], [0.88, 0.89, 0.90, 0.89, 0.88], "higher"),
    ([0.88, 0.89, 0.90, 0.89, 0.88], [0.91, 0.93, 0.92, 0.94, 0.92], "lower"),
    ([0.90, 0.92, 0.88, 0.91, 0.89], [0.91, 0.90, 0.89, 0.90, 0.90], "not separated"),
    ([0.95], [0.85], "not separated"),  # one seed: no interval, no claim
])
def test_verdict_claims_a_difference_only_when_the_interval_excludes_zero(a, b, expected):
    assert verdict(paired_difference(a, b)) == expected


def test_test_sampling_noise_of_one_accuracy():
    assert binomial_half_width(0.9, 5000) == pytest.approx(1.959964 * math.sqrt(0.09 / 5000), rel=1e-6)
    assert binomial_half_width(0.9, 5000) < 0.01 < binomial_half_width(0.9, 100)  # the reason for 5 000 test points


def test_an_accuracys_interval_stops_at_its_bounds():
    estimate = interval([1.0, 0.98, 1.0], bounds=(0.0, 1.0))
    assert estimate["ci95_high"] == 1.0 and estimate["ci95_low"] < estimate["mean"] < 1.0
    assert interval([1.0, 0.98, 1.0])["ci95_high"] > 1.0  # unbounded, the t-interval would pass 100%
