"""The training engine: K independent networks of one architecture trained at
once (stacked parameters, batched matrix products) inside one LightningModule.
Seeds and regularization-path strengths are the K; a single network is K = 1."""
