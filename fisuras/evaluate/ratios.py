"""The one rule for undefined ratios used by every fisuras metric: 0/0 gives 0.0, never NaN.

Why 0.0: a metric with nothing to measure (no predictions, no positives) earns no credit, JSON stays
valid, and averages over images or groups do not turn into NaN. Where "undefined" must stay visible
(ROC AUC with one class only) the metric returns ``None`` instead and says so in its docstring.
"""

from __future__ import annotations

import numpy as np


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` as a float, or 0.0 when the denominator is 0.

    Example:
        >>> ratio(3, 4), ratio(0, 0)
        (0.75, 0.0)
    """
    return float(numerator) / float(denominator) if denominator else 0.0


def ratios(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise :func:`ratio` on arrays, without divide-by-zero warnings."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def f_scores(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """Harmonic mean of precision and recall, element-wise; 0.0 where both are 0."""
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    return ratios(2.0 * precision * recall, precision + recall)
