"""A training run to a model directory (ONNX + manifest): ``liveness export``."""
