"""Benchmarks: scripts that measure against a baseline in the same process (run them with python -m bench.NAME)."""
