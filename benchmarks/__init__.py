"""Benchmarks of orchestrate against pytest, pytest-xdist and pytest-split; see README.md."""
