"""Statistics over seeds: the mean with its 95% t-interval; paired
differences (same seeds, same data) with theirs, their p-values adjusted for
the number of comparisons (Holm), the chance of winning on a fresh seed and
the seeds a difference would need. The intervals describe the spread from
training randomness (initialization, minibatch order, masks, augmentation)
on fixed data splits."""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95


def interval(values, bounds: tuple[float, float] | None = None) -> dict[str, float | int | None]:
    """{"mean", "ci95_low", "ci95_high", "n"}: the mean of values and the 95%
    t-interval of that mean (scipy.stats), cut to bounds (an accuracy's
    interval does not reach past 100%); no interval from a single value, and
    a point interval when all values are equal."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        low = high = None
    elif np.all(values == values[0]):
        low = high = mean
    else:
        low, high = (float(v) for v in stats.ttest_1samp(values, 0.0).confidence_interval(CONFIDENCE))
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": mean, "ci95_low": low, "ci95_high": high, "n": len(values)}


def paired_difference(a, b) -> dict[str, float | int | None]:
    """The interval of the mean of a - b, value by value (the same seeds)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must match one to one, got {len(a)} and {len(b)}")
    return interval(a - b)


def paired_p_value(a, b) -> float:
    """Two-sided p-value of the paired t-test of a - b (scipy.stats): 1 where
    it has none (one seed, or every difference 0)."""
    from scipy import stats

    differences = np.subtract(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    if len(differences) < 2 or not differences.any():
        return 1.0
    if np.ptp(differences) <= 1e-12 * np.abs(differences).max():
        return 0.0  # the same non-zero difference on every seed (to rounding: 0.89 - 0.86 is not 0.91 - 0.88)
    return float(stats.ttest_1samp(differences, 0.0).pvalue)


def holm(p_values: list[float]) -> list[float]:
    """The p-values adjusted by Holm's step-down method for this many
    comparisons (statsmodels' multipletests): an adjusted value below 0.05
    keeps the chance of any false verdict among them below 5%."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(p_values, alpha=1 - CONFIDENCE, method="holm")[1]]


def adjusted_verdict(difference: dict, adjusted_p: float) -> str:
    """'higher' or 'lower' when the adjusted p-value is below 0.05, else 'not separated'."""
    if adjusted_p >= 1 - CONFIDENCE:
        return "not separated"
    return "higher" if difference["mean"] > 0 else "lower"


def win_probability(a, b) -> dict[str, float | int]:
    """The chance that a beats b on a fresh seed: the share of seeds where it
    did (a tie counts half), with its 95% Wilson interval (statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    wins = float(np.sum(a > b) + 0.5 * np.sum(a == b))
    low, high = proportion_confint(wins, len(a), alpha=1 - CONFIDENCE, method="wilson")
    return {"mean": wins / len(a), "ci95_low": float(low), "ci95_high": float(high), "n": len(a)}


def seeds_needed(a, b, comparisons: int = 1, power: float = 0.8, most: int = 100_000) -> int | None:
    """How many seeds a paired t-test needs to separate the observed mean
    difference of a - b at its observed spread, with the given power, at
    Holm's strictest level (0.05 / comparisons); the power from statsmodels'
    TTestPower. None when the observed difference is 0, or would need more
    than `most` seeds."""
    differences = np.subtract(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    mean, spread = abs(float(differences.mean())), float(differences.std(ddof=1)) if len(differences) > 1 else 0.0
    if mean == 0:
        return None
    if spread <= 1e-12 * mean:
        return 2
    from statsmodels.stats.power import TTestPower

    def enough(n: int) -> bool:
        # the noncentral t's numerics give NaN far out in its tail, where the power is 1
        achieved = TTestPower().power(effect_size=mean / spread, nobs=n, alpha=(1 - CONFIDENCE) / comparisons,
                                      alternative="two-sided")
        return bool(np.isnan(achieved) or achieved >= power)

    # the power grows with n: double until enough, then bisect for the smallest
    high = 2
    while not enough(high):
        if high >= most:
            return None
        high *= 2
    low = high // 2 + 1 if high > 2 else 2
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle + 1, high)
    return low


def verdict(difference: dict) -> str:
    """'higher' or 'lower' when the difference's interval excludes 0, else
    'not separated' (also with a single seed: no interval, no claim)."""
    low, high = difference["ci95_low"], difference["ci95_high"]
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "not separated"
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "not separated"


def standard_error(values) -> float:
    """The standard error of the mean of values (0 for one value)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def half_width(estimate: dict) -> float | None:
    """Half the interval's width, or None without an interval."""
    if estimate["ci95_low"] is None:
        return None
    return (estimate["ci95_high"] - estimate["ci95_low"]) / 2


def binomial_standard_error(accuracy: float, n: int) -> float:
    """The standard error of one accuracy measured on n examples: the noise
    of sampling the test set itself."""
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n) if n else math.inf
