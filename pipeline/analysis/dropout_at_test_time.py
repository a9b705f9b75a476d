"""Dropout at test time, three ways to predict (CS231n's notes): weight scaling
(the inverted dropout the networks train with, so no mask and no scaling at
test time), Monte Carlo dropout (the mean of T predictions, each with fresh
masks: an ensemble of T thinned networks) and the ensemble of the seeds'
networks (each by weight scaling), scored on accuracy, negative
log-likelihood and expected calibration error.

Every score works on per-point arrays (..., m) and keeps the leading axes,
so all networks, all sample counts and all bootstrap resamples are scored at
once."""

from __future__ import annotations

import numpy as np

from pipeline.analysis.statistics import CONFIDENCE, adjusted_verdict, holm, interval, paired_difference, paired_p_value

METRICS = ("accuracy", "nll", "ece")  # nll: mean -log p(true class); ece: expected calibration error
BOUNDS = {"accuracy": (0.0, 1.0), "nll": (0.0, np.inf), "ece": (0.0, 1.0)}  # where their intervals are cut
BOOTSTRAP_RESAMPLES = 999


def sample_counts(samples: int) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... below samples, then samples: where the Monte
    Carlo average is scored, to show how it converges."""
    counts, scale = [], 1
    while scale < samples:
        counts += [c for c in (scale, 2 * scale, 5 * scale) if c < samples]
        scale *= 10
    return [*counts, samples]


def per_point(log_probabilities: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From log-probabilities (..., m, classes): each point's confidence (the
    top class's probability), whether the top class is right, and the
    true class's log-probability; each (..., m). Logs, not probabilities:
    a confident network's 1 - p rounds to 0 in float32, and its
    log-likelihood would be infinite."""
    log_p = np.asarray(log_probabilities, dtype=np.float64)
    true = np.take_along_axis(log_p, np.broadcast_to(y[:, None], (*log_p.shape[:-1], 1)), -1)[..., 0]
    return np.exp(log_p.max(-1)), log_p.argmax(-1) == y, true


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int) -> np.ndarray:
    """(...,) from (..., m): the top-label ECE of Guo et al. (2017) over equal-
    width confidence bins, sum_b (n_b/m) |accuracy_b - confidence_b|, which
    is sum_b |correct_b - confidence sum_b| / m."""
    m = confidence.shape[-1]
    flat_confidence, flat_correct = confidence.reshape(-1, m), correct.reshape(-1, m).astype(np.float64)
    rows = len(flat_confidence)
    index = np.minimum((flat_confidence * bins).astype(np.int64), bins - 1) + bins * np.arange(rows)[:, None]
    gap = (np.bincount(index.ravel(), flat_correct.ravel(), rows * bins)
           - np.bincount(index.ravel(), flat_confidence.ravel(), rows * bins))
    return (np.abs(gap).reshape(rows, bins).sum(-1) / m).reshape(confidence.shape[:-1])


def scores_of_points(confidence: np.ndarray, correct: np.ndarray, log_likelihood: np.ndarray, bins: int
                     ) -> dict[str, np.ndarray]:
    return {"accuracy": correct.mean(-1), "nll": -log_likelihood.mean(-1),
            "ece": expected_calibration_error(confidence, correct, bins)}


def scores(log_probabilities: np.ndarray, y: np.ndarray, bins: int) -> dict[str, np.ndarray]:
    """Accuracy, NLL and ECE, (...,) from log-probabilities (..., m, classes)."""
    return scores_of_points(*per_point(log_probabilities, y), bins)


def mean_probabilities(log_probabilities: np.ndarray, axis: int = 0) -> np.ndarray:
    """The log of the mean of the probabilities along axis, computed in logs."""
    from scipy.special import logsumexp

    return logsumexp(log_probabilities, axis=axis) - np.log(log_probabilities.shape[axis])


def bootstrap_intervals(log_probabilities: np.ndarray, y: np.ndarray, bins: int, seed: int = 0) -> dict[str, dict]:
    """One model's scores with 95% percentile intervals over resampled test
    points (scipy.stats.bootstrap): all a single model's interval can say,
    since its training randomness is not resampled."""
    from scipy import stats

    points = per_point(log_probabilities, y)
    estimates = scores_of_points(*points, bins)

    def statistic(*resampled, axis):
        return np.stack(list(scores_of_points(*resampled, bins).values()))

    result = stats.bootstrap(points, statistic, paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES,
                             method="percentile", confidence_level=CONFIDENCE, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return {metric: {"value": float(estimates[metric]), "ci95_low": float(low[i]), "ci95_high": float(high[i])}
            for i, metric in enumerate(METRICS)}


def compare(weight_scaled: np.ndarray, sampled: np.ndarray, y: np.ndarray, bins: int) -> dict:
    """The three predictions scored on the same points, from log-probabilities.
    weight_scaled: (K, m, classes), each network without masks; sampled: (T,
    K, m, classes), with T masks each. Per network (a list over the K seeds):
    weight scaling's scores, and Monte Carlo's after 1, 2, 5, ... T samples;
    the seeds' ensemble's, with intervals over test points."""
    from scipy.special import logsumexp

    sampled = np.asarray(sampled, dtype=np.float64)
    counts = sample_counts(len(sampled))
    # the log of the running sum of probabilities, a block of samples at a time, less the log of the count
    running, total = [], None
    for start, end in zip([0, *counts], counts):
        block = logsumexp(sampled[start:end], axis=0)
        total = block if total is None else np.logaddexp(total, block)
        running.append(total - np.log(end))
    monte_carlo = scores(np.stack(running), y, bins)
    return {"samples": len(sampled), "test_points": len(y), "calibration_bins": bins,
            "weight_scaling": {metric: values.tolist() for metric, values in scores(weight_scaled, y, bins).items()},
            "monte_carlo": {"samples": counts, **{metric: values.tolist() for metric, values in monte_carlo.items()}},
            "seed_ensemble": bootstrap_intervals(mean_probabilities(np.asarray(weight_scaled, np.float64)), y, bins)}


def summarize(documents: dict[str, dict]) -> dict[str, dict]:
    """Per recipe (its compare() document): weight scaling's and Monte Carlo's
    scores with 95% intervals over seeds, Monte Carlo's at each sample count,
    the paired difference Monte Carlo − weight scaling per metric, and the
    seeds' ensemble. The differences' verdicts are adjusted (Holm) over every
    metric of every recipe here."""
    summary = {}
    for recipe, document in documents.items():
        monte_carlo = document["monte_carlo"]
        summary[recipe] = {
            "samples": document["samples"], "test_points": document["test_points"], "seeds": len(document["seeds"]),
            "weight_scaling": {m: interval(document["weight_scaling"][m], BOUNDS[m]) for m in METRICS},
            "monte_carlo": {m: interval(monte_carlo[m][-1], BOUNDS[m]) for m in METRICS},
            "monte_carlo_by_samples": {"samples": monte_carlo["samples"],
                                       **{m: [interval(values, BOUNDS[m]) for values in monte_carlo[m]]
                                          for m in METRICS}},
            "monte_carlo_minus_weight_scaling": {
                m: paired_difference(monte_carlo[m][-1], document["weight_scaling"][m])
                | {"p_value": paired_p_value(monte_carlo[m][-1], document["weight_scaling"][m])} for m in METRICS},
            "seed_ensemble": document["seed_ensemble"],
        }
    differences = [difference for row in summary.values()
                   for difference in row["monte_carlo_minus_weight_scaling"].values()]
    for difference, adjusted in zip(differences, holm([d["p_value"] for d in differences])):
        difference["p_value_holm"] = adjusted
        difference["verdict"] = adjusted_verdict(difference, adjusted)
    return summary
