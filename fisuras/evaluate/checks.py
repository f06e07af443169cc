"""Input checks shared by the metric modules: turn array-likes into clean arrays or fail clearly.

Metrics are where silent mistakes hide (logits passed as probabilities, 0/255 masks passed as
booleans, labels and scores of different lengths), so every public metric runs its inputs through
one of these helpers first.
"""

from __future__ import annotations

import numpy as np

from fisuras.data.images import MaskError as MaskError  # masks: the one check, in data
from fisuras.data.images import as_mask as as_mask
from fisuras.errors import FisurasError


class EvaluationInputError(FisurasError, ValueError):
    """Raised when labels, scores or probability maps are not what a metric expects (a bad mask
    raises :class:`~fisuras.data.images.MaskError`, from :func:`as_mask`)."""


def as_binary_labels(values, what: str = "y_true") -> np.ndarray:
    """Return ``values`` as a 1-D bool array; accept bools or the integers/floats 0 and 1.

    Example:
        >>> as_binary_labels([0, 1, 1]).tolist()
        [False, True, True]
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise EvaluationInputError(f"{what} must be 1-D, got shape {array.shape}.")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            bad = np.unique(array[~np.isin(array, (0, 1))])[:5].tolist()
            raise EvaluationInputError(f"{what} must hold only 0 and 1 (or bools); found {bad}.")
        array = array.astype(bool)
    return array


def as_probabilities(values, what: str = "scores") -> np.ndarray:
    """Return ``values`` as a float64 array of finite probabilities in [0, 1], any shape."""
    array = np.asarray(values, dtype=np.float64)
    if array.size and not np.isfinite(array).all():
        raise EvaluationInputError(f"{what} contain NaN or infinite values.")
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise EvaluationInputError(
            f"{what} must be probabilities in [0, 1]; got min {array.min():.4g}, "
            f"max {array.max():.4g} (logits? apply a sigmoid first)."
        )
    return array


def labels_and_scores(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    """Check a classification pair: same non-zero length, labels 0/1, scores in [0, 1]."""
    labels = as_binary_labels(y_true)
    probabilities = as_probabilities(scores).reshape(-1)
    if labels.size == 0:
        raise EvaluationInputError("y_true is empty: nothing to evaluate.")
    if probabilities.size != labels.size:
        raise EvaluationInputError(
            f"y_true has {labels.size} labels but scores has {probabilities.size} values."
        )
    return labels, probabilities


def _drop_channel(array: np.ndarray, what: str) -> np.ndarray:
    """Accept (H, W) or (H, W, 1), the shape a one-channel model output has."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise EvaluationInputError(f"{what} must be 2-D (H, W) or (H, W, 1); got {array.shape}.")
    return array


def as_probability_map(values, what: str = "prob") -> np.ndarray:
    """Return a 2-D float64 map of probabilities in [0, 1], shape (H, W) or (H, W, 1)."""
    return _drop_channel(as_probabilities(values, what), what)


def same_shape(first: np.ndarray, second: np.ndarray, names: str = "pred and true") -> None:
    """Raise when two maps differ in shape (a resized mask is a common slip)."""
    if first.shape != second.shape:
        raise EvaluationInputError(f"{names} differ in shape: {first.shape} vs {second.shape}.")
