"""Synthetic presentation attacks from genuine clips: ``liveness synth``."""
