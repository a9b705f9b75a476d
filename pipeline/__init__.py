"""regularization lab: a DVC + Hydra + Lightning + MLflow pipeline for seeing what
regularization does to a neural network. One module per stage; see README.md."""
