"""Benchmarks run by ``data-engine bench ...`` (plain Python; timed as whole processes)."""
