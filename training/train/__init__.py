"""The training loop of the joint CNN-LSTM: ``liveness train``."""
