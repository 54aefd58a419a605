"""The embedded default model, made reproducibly: ``python -m training.default_model``."""
