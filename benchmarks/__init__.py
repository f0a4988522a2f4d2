"""Simulator speed and memory benchmarks (``python -m benchmarks.<name>``); JSON in ``benchmarks/results``."""
