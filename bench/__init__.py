"""Benchmarks: figures printed as tables, measured side by side in one run.

Run them with ``liveness bench [NAME ...] [--quick]`` (see bench/cli.py), or one at a
time with ``python -m bench.<name>``. Nothing here is a test: speed is measured here and
reported in docs/benchmarks.md, never asserted.
"""
