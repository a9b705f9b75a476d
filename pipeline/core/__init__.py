"""What every stage shares: the parameter schema, errors, atomic writes and
output paths."""
