"""MLflow, the system of record: the store, the runs the stages log to, and
which process owns a running run. No data passes between stages through
MLflow; DVC's files do that."""
