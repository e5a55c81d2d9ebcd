"""Tests of tools/ (not installed: the benchmark)."""
