"""What every stage shares: the base of the config schemas, errors, atomic
writes and output paths."""
