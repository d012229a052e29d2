"""Benchmarks of the engine against reference implementations."""
