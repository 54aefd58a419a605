"""The ``liveness`` command."""
