"""A regularization path's numbers: one row per (strength, seed), their
means and intervals over seeds per strength, and the strengths chosen on dev:
the best, and the one-standard-error choice. A row holds the weight
statistic the technique acts on after training, and at each step the
weights were recorded (columns <statistic>_step_<step>)."""

from __future__ import annotations

import csv
import io

from pipeline.analysis.statistics import interval, standard_error

MEASURES = ["train_accuracy", "dev_accuracy", "test_accuracy", "train_loss", "dev_loss", "test_loss"]


def step_column(statistic: str, step: int) -> str:
    return f"{statistic}_step_{step}"


def rows(values: list[float], seeds: list[int], documents: list[dict], statistic: str,
         during_training: dict[int, list[dict]] | None = None) -> list[dict]:
    """One row per network, the networks ordered value by value, seed by seed;
    during_training: step -> per network, its weight statistics then."""
    table = []
    for k, ((value, seed), document) in enumerate(zip(((v, s) for v in values for s in seeds), documents)):
        row = {"strength": value, "seed": seed}
        for measure in MEASURES:
            part, name = measure.split("_")
            row[measure] = document[part][name] if part in document else None
        row[statistic] = document["weights"][statistic]
        row |= {step_column(statistic, step): networks[k][statistic]
                for step, networks in (during_training or {}).items()}
        table.append(row)
    return table


def over_training(row: dict, statistic: str) -> dict[int, object]:
    """step -> the row's value of statistic then (a summary row's: its interval), from its step columns."""
    prefix = step_column(statistic, "")
    return {int(key.removeprefix(prefix)): value for key, value in row.items() if key.startswith(prefix)}


def to_csv(table: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(table[0]), lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return out.getvalue()


def from_csv(text: str) -> list[dict]:
    def parsed(key: str, value: str):
        if value == "":
            return None
        return int(value) if key == "seed" else float(value)

    return [{key: parsed(key, value) for key, value in row.items()} for row in csv.DictReader(io.StringIO(text))]


def by_strength(table: list[dict]) -> list[dict]:
    """Per strength, in grid order: each column's mean and 95% interval over seeds."""
    strengths = list(dict.fromkeys(row["strength"] for row in table))
    columns = [key for key in table[0] if key not in ("strength", "seed")]
    summary = []
    for strength in strengths:
        group = [row for row in table if row["strength"] == strength]
        summary.append({"strength": strength} | {
            column: interval([row[column] for row in group], bounds=(0.0, 1.0) if "accuracy" in column else None)
            if group[0][column] is not None else None for column in columns})
    return summary


def select(summary: list[dict]) -> dict | None:
    """The strength chosen on dev: the highest mean dev accuracy, ties broken
    by the lower mean dev loss, then by grid order. None without a dev set."""
    if summary[0]["dev_accuracy"] is None:
        return None
    return max(summary, key=lambda s: (s["dev_accuracy"]["mean"], -s["dev_loss"]["mean"]))


def one_standard_error(table: list[dict], summary: list[dict], stronger: str) -> dict | None:
    """The most regularized strength whose mean dev accuracy is within one
    standard error (over seeds) of the best's: glmnet's lambda.1se, which
    trades a difference the seeds cannot resolve for a simpler network.
    stronger is "larger" or "smaller": which way regularizes more. None without a dev set."""
    best = select(summary)
    if best is None:
        return None
    error = standard_error([row["dev_accuracy"] for row in table if row["strength"] == best["strength"]])
    within = [s for s in summary if s["dev_accuracy"]["mean"] >= best["dev_accuracy"]["mean"] - error]
    return (max if stronger == "larger" else min)(within, key=lambda s: s["strength"])
