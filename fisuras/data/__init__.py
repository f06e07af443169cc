"""Crack datasets: read, check, split, inspect, synthesize, and feed to TensorFlow.

Everything but the input pipeline works without TensorFlow. ``make_dataset`` and
``describe_cache`` (TensorFlow) and the synthetic-data functions (SciPy) are imported on first
use, so ``import fisuras.data`` stays quick.

Typical use (what the training engine does):
    >>> desc = read_dataset("data/sdnet")                       # doctest: +SKIP
    >>> report = check_dataset(desc)                            # doctest: +SKIP
    >>> desc = apply_check(desc, report, skip_bad=False)        # stops with one clear report
    >>> manifest = split_dataset(desc, seed=42, keys=report.content_keys)  # doctest: +SKIP
    >>> train = make_dataset(manifest["train"], task=desc.task, image_size=224,
    ...                      batch_size=64, training=True)      # doctest: +SKIP
"""

from fisuras.data.cache_plan import CachePlan, estimate_decoded_bytes, plan_cache
from fisuras.data.check import CheckReport, DataProblemsError, apply_check, check_dataset
from fisuras.data.dataset import (
    CLASS_NAMES,
    PROBLEM_KINDS,
    SURFACES,
    DatasetDescription,
    DatasetLayoutError,
    Problem,
    Sample,
)
from fisuras.data.inspection import InspectReport, inspect_dataset
from fisuras.data.readers import read_dataset
from fisuras.data.splits import Manifest, split_dataset

__all__ = [
    "CLASS_NAMES", "PROBLEM_KINDS", "SURFACES", "CachePlan", "CheckReport", "DataProblemsError",
    "DatasetDescription", "DatasetLayoutError", "InspectReport", "Manifest", "Problem", "Sample",
    "SynthSummary", "apply_check", "check_dataset", "describe_cache", "estimate_decoded_bytes",
    "inspect_dataset", "make_dataset", "plan_cache", "read_dataset", "render_crack_sample",
    "split_dataset", "synthesize",
]

_LAZY = {"make_dataset": "pipeline", "describe_cache": "pipeline",
         "SynthSummary": "synth", "render_crack_sample": "synth", "synthesize": "synth"}


def __getattr__(name: str):
    """Import the heavy modules (TensorFlow, SciPy) only when first asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"fisuras.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'fisuras.data' has no attribute {name!r}")
