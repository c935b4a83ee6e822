"""Helper programs for development, tests and benchmarks (not part of the daemon's request path)."""
