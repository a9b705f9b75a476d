"""What the trained networks are measured and shown by: evaluation on the
splits, weight statistics, statistics over seeds, regularization paths,
the report's content and the figures."""
