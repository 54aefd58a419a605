"""The HTTP and WebSocket routes, one module per endpoint family."""
