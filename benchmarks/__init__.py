"""Benchmarks of cmalign on this machine: ``python -m benchmarks.run`` (``make bench``)."""
