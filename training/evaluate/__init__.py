"""Scoring model directories and reporting the paper's measures: ``liveness eval``."""
