"""Benchmarks of the hub against the physical limit of each workload (see bench/README.md)."""
