"""The service's `liveness` subcommands: serve, check, stream, verify-token."""
