"""Measured comparisons: ``fisuras benchmark``, the turbo before/after on this machine.

Importing this package does not import TensorFlow (each configuration runs in its own process).

Example:
    >>> from fisuras.bench import run_benchmark
    >>> from fisuras.config import load_settings
    >>> from fisuras.hardware import detect_facts
    >>> result = run_benchmark(load_settings(), detect_facts(), steps=10)  # doctest: +SKIP
    >>> print(result.table())                                        # doctest: +SKIP
"""

from fisuras.bench.run import run_benchmark
from fisuras.bench.turbo import BenchmarkResult, Configuration, Measurement, configurations

__all__ = ["BenchmarkResult", "Configuration", "Measurement", "configurations", "run_benchmark"]
