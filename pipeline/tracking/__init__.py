"""MLflow, the system of record: the store and the runs the stages log to.
No data passes between stages through MLflow; DVC's files do that."""
