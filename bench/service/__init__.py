"""Benchmarks of the service (not tests: nothing here runs under pytest). See bench.service.store."""
