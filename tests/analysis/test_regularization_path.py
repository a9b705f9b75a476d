"""A path's table: rows per (strength, seed), means and intervals per
strength, the strength chosen on dev, and the CSV round trip."""

from __future__ import annotations

import pytest

from pipeline.analysis.regularization_path import (by_strength, from_csv, one_standard_error, over_training, rows,
                                                   select, to_csv)


def document(train: float, dev: float | None, test: float, statistic: float) -> dict:
    doc = {"train": {"accuracy": train, "loss": 1 - train}, "test": {"accuracy": test, "loss": 1 - test},
           "weights": {"squared_weight_sum": statistic}}
    if dev is not None:
        doc["dev"] = {"accuracy": dev, "loss": 1 - dev}
    return doc


VALUES, SEEDS = [0.1, 1.0, 10.0], [0, 1]
# too little regularization overfits, too much underfits: dev peaks at 1.0
DOCUMENTS = [document(0.99, 0.85, 0.84, 500), document(0.98, 0.86, 0.85, 480),
             document(0.94, 0.92, 0.91, 30), document(0.95, 0.93, 0.90, 28),
             document(0.80, 0.79, 0.80, 1), document(0.81, 0.80, 0.78, 1)]


def test_rows_pair_each_network_with_its_strength_and_seed():
    table = rows(VALUES, SEEDS, DOCUMENTS, "squared_weight_sum")
    assert [(row["strength"], row["seed"]) for row in table] == [(v, s) for v in VALUES for s in SEEDS]
    assert list(table[0]) == ["strength", "seed", "train_accuracy", "dev_accuracy", "test_accuracy", "train_loss",
                              "dev_loss", "test_loss", "squared_weight_sum"]
    assert table[3]["dev_accuracy"] == 0.93 and table[3]["squared_weight_sum"] == 28


def test_rows_hold_the_statistic_at_each_recorded_step_and_the_summary_its_interval():
    during = {step: [{"squared_weight_sum": 100.0 * (k + 1) / (step + 1)} for k in range(6)] for step in (0, 1, 3)}
    table = rows(VALUES, SEEDS, DOCUMENTS, "squared_weight_sum", during)
    assert list(table[0])[-3:] == ["squared_weight_sum_step_0", "squared_weight_sum_step_1",
                                   "squared_weight_sum_step_3"]
    assert over_training(table[3], "squared_weight_sum") == {0: 400.0, 1: 200.0, 3: 100.0}  # network 3's
    assert from_csv(to_csv(table)) == table
    summary = by_strength(table)
    steps = over_training(summary[1], "squared_weight_sum")  # strength 1: networks 2 and 3
    assert sorted(steps) == [0, 1, 3] and steps[1]["mean"] == pytest.approx((150 + 200) / 2)
    assert steps[1]["ci95_low"] < steps[1]["mean"] < steps[1]["ci95_high"]
    assert summary[1]["squared_weight_sum"]["mean"] == 29  # the trained network's column, untouched


def test_summary_per_strength_and_the_choice_on_dev_not_test():
    summary = by_strength(rows(VALUES, SEEDS, DOCUMENTS, "squared_weight_sum"))
    assert [s["strength"] for s in summary] == VALUES
    assert summary[1]["dev_accuracy"]["mean"] == pytest.approx(0.925)
    assert summary[1]["dev_accuracy"]["n"] == 2 and summary[1]["dev_accuracy"]["ci95_low"] < 0.925
    chosen = select(summary)
    assert chosen["strength"] == 1.0
    # test would have picked 0.1's neighbour differently were it used: it is not
    documents = [document(0.99, 0.85, 0.95, 1), document(0.99, 0.85, 0.95, 1)] + DOCUMENTS[2:]
    assert select(by_strength(rows(VALUES, SEEDS, documents, "squared_weight_sum")))["strength"] == 1.0


def test_ties_on_dev_accuracy_go_to_the_lower_dev_loss():
    docs = [document(0.9, 0.9, 0.9, 1) for _ in range(6)]
    docs[4]["dev"]["loss"] = docs[5]["dev"]["loss"] = 0.01
    assert select(by_strength(rows(VALUES, SEEDS, docs, "squared_weight_sum")))["strength"] == 10.0


def test_without_a_dev_set_nothing_is_chosen_and_csv_round_trips():
    docs = [document(0.9, None, 0.9, 1) for _ in range(6)]
    table = rows(VALUES, SEEDS, docs, "squared_weight_sum")
    assert select(by_strength(table)) is None
    assert from_csv(to_csv(table)) == table


def path_with_dev(devs: dict[float, list[float]]) -> list[dict]:
    """A table whose dev accuracies are given per strength (one per seed)."""
    values, seeds = list(devs), list(range(len(next(iter(devs.values())))))
    docs = [document(0.95, devs[v][s], 0.9, 1) for v in values for s in seeds]
    return rows(values, seeds, docs, "squared_weight_sum")


def test_the_one_standard_error_choice_is_the_most_regularized_within_one_error_of_the_best():
    # best at 1.0: mean 0.92, seeds 0.90 and 0.94, so its standard error is 0.02 (sd 0.0283 / sqrt 2)
    devs = {0.01: [0.88, 0.88], 0.1: [0.905, 0.905], 1.0: [0.90, 0.94], 3.0: [0.901, 0.901], 10.0: [0.899, 0.899],
            30.0: [0.70, 0.70]}
    table = path_with_dev(devs)
    summary = by_strength(table)
    assert select(summary)["strength"] == 1.0
    # within 0.92 - 0.02 = 0.90: 0.1, 1.0 and 3.0 (10.0's 0.899 is just outside); the strongest of them
    assert one_standard_error(table, summary, "larger")["strength"] == 3.0
    # for a technique that regularizes more as its value shrinks (max-norm's c, keep_prob), the smallest
    assert one_standard_error(table, summary, "smaller")["strength"] == 0.1
    # seeds that agree exactly leave no slack: the best is the choice
    exact = path_with_dev({0.1: [0.9, 0.9], 1.0: [0.92, 0.92], 10.0: [0.919, 0.919]})
    assert one_standard_error(exact, by_strength(exact), "larger")["strength"] == 1.0
    no_dev = rows(VALUES, SEEDS, [document(0.9, None, 0.9, 1) for _ in range(6)], "squared_weight_sum")
    assert one_standard_error(no_dev, by_strength(no_dev), "larger") is None
