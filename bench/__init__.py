"""Benchmarks: each writes its figures (JSON, PNG) to the file it is given. Never timed tests."""
