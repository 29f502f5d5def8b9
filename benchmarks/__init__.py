"""Benchmarks: they print figures (see BENCHMARKS.md); `make bench` runs them."""
