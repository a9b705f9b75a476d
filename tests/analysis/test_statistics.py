"""Means and 95% intervals over seeds against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.analysis.statistics import (adjusted_verdict, binomial_standard_error, holm, interval, paired_difference,
                                          paired_p_value, seeds_needed, verdict, win_probability)

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
    assert binomial_standard_error(0.9, 5000) == pytest.approx(math.sqrt(0.09 / 5000), rel=1e-12)
    # the reason for 5 000 test points: 0.42 points, against 3 with 100
    assert binomial_standard_error(0.9, 5000) < 0.005 < binomial_standard_error(0.9, 100)


def test_an_accuracys_interval_stops_at_its_bounds():
    estimate = interval([1.0, 0.98, 1.0], bounds=(0.0, 1.0))
    assert estimate["ci95_high"] == 1.0 and estimate["ci95_low"] < estimate["mean"] < 1.0
    assert interval([1.0, 0.98, 1.0])["ci95_high"] > 1.0  # unbounded, the t-interval would pass 100%


def test_holm_adjusts_as_statsmodels_and_by_hand():
    raw = [0.01, 0.04, 0.03, 0.005, 0.2]
    # by hand: sorted 0.005, 0.01, 0.03, 0.04, 0.2 times 5, 4, 3, 2, 1, then running maxima
    assert holm(raw) == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.2])
    assert holm([]) == []


def test_the_p_value_is_the_paired_t_tests():
    from scipy import stats

    a, b = [0.91, 0.93, 0.92, 0.94, 0.92], [0.90, 0.90, 0.91, 0.90, 0.91]
    assert paired_p_value(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    assert paired_p_value([0.9, 0.9], [0.9, 0.9]) == 1.0 and paired_p_value([0.9], [0.8]) == 1.0
    assert paired_p_value([0.92, 0.93], [0.90, 0.91]) == 0.0  # the same difference on every seed


def test_separated_means_after_adjustment():
    # ten recipes; one raw p-value of 0.02 is below 0.05 alone but not after Holm's adjustment for ten
    differences = [{"mean": 0.01}] * 10
    raw = [0.02] + [0.5] * 9
    adjusted = holm(raw)
    assert adjusted[0] == pytest.approx(0.2)
    assert [adjusted_verdict(d, p) for d, p in zip(differences, adjusted)] == ["not separated"] * 10
    assert adjusted_verdict({"mean": -0.01}, 0.001) == "lower" and adjusted_verdict({"mean": 0.01}, 0.001) == "higher"


def test_the_chance_to_win_on_a_fresh_seed():
    won = win_probability([0.91, 0.92, 0.90, 0.93, 0.95], [0.90, 0.93, 0.89, 0.92, 0.95])  # 3 wins, 1 loss, 1 tie
    assert won["mean"] == pytest.approx(0.7) and won["n"] == 5
    # Wilson's interval for 3.5 of 5, by its formula
    z, n, p = 1.959964, 5, 0.7
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (won["ci95_low"], won["ci95_high"]) == pytest.approx((centre - half, centre + half), rel=1e-5)
    always = win_probability([0.95] * 10, [0.90] * 10)
    assert always["mean"] == 1.0 and always["ci95_high"] == pytest.approx(1.0) and 0.6 < always["ci95_low"] < 0.8


def test_seeds_needed_for_a_difference_at_its_spread():
    from scipy import stats

    a = [0.900, 0.905, 0.910, 0.895, 0.902]
    b = [0.895, 0.896, 0.907, 0.894, 0.893]
    n = seeds_needed(a, b)
    d = np.subtract(a, b)
    effect = d.mean() / d.std(ddof=1)

    def power(seeds: int) -> float:  # the paired t-test's power, from the noncentral t distribution
        critical = stats.t.ppf(0.975, seeds - 1)
        return 1 - stats.nct.cdf(critical, seeds - 1, effect * math.sqrt(seeds)) + stats.nct.cdf(
            -critical, seeds - 1, effect * math.sqrt(seeds))

    assert power(n) >= 0.8 > power(n - 1)
    assert seeds_needed(a, b, comparisons=10) > n  # Holm's strictest level asks for more
    assert seeds_needed([0.9, 0.9], [0.9, 0.9]) is None  # no difference: no number of seeds separates it


def test_seeds_needed_for_a_large_difference_is_a_few():
    # 4 points better at a spread of 1 point (effect 4): 4 seeds give 63% power at 0.05 / 10, 5 give 93%;
    # the noncentral t's numerics fail (NaN) for such an effect at 8 to 32 seeds, where the power is 1
    differences = np.array([0.03, 0.04, 0.05, 0.035, 0.045]) - 0.0
    spread = differences.std(ddof=1)
    scaled = 0.04 + (differences - differences.mean()) * (0.01 / spread)  # mean 0.04, sd 0.01
    assert seeds_needed(scaled, np.zeros(5), comparisons=10) == 5
