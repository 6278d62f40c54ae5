"""Benchmarks and the pure-JAX reference implementation (not part of the ``helpers`` package)."""
