"""Access control: credentials, tokens, rate limits, security headers, connection limits."""
