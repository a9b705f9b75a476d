"""Data: where each dataset comes from (generators, images, users' files,
downloads), its raw arrays, and its train / dev / test split."""
