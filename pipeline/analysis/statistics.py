"""Statistics over seeds: the mean with its 95% t-interval, and paired
differences (same seeds, same data) with theirs. The intervals describe the
spread from training randomness (initialization, minibatch order, masks,
augmentation) on fixed data splits."""

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


def half_width(estimate: dict) -> float | None:
    """Half the interval's width, or None without an interval."""
    if estimate["ci95_low"] is None:
        return None
    return (estimate["ci95_high"] - estimate["ci95_low"]) / 2


def binomial_half_width(accuracy: float, n: int) -> float:
    """Half the 95% normal-approximation interval of one accuracy measured on
    n examples: the noise of sampling the test set itself."""
    from scipy import stats

    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    return z * math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n) if n else math.inf
