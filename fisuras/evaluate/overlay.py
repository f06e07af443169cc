"""Error overlay: where a crack mask is right, where it raises false alarms, where it misses.

Colours (RGB), blended over the photo so the concrete texture stays visible:

* true positive (crack found): green ``(0, 220, 0)``
* false positive (false alarm): red ``(255, 0, 0)``
* false negative (missed crack): blue ``(0, 120, 255)``, a light blue that stays visible on dark
  concrete and is told apart from red and green also by red-green colour-blind readers.

Pixels that are background in both masks keep the original image.
"""

from __future__ import annotations

import numpy as np

from fisuras.evaluate.checks import EvaluationInputError, as_mask, same_shape

TRUE_POSITIVE_RGB = (0, 220, 0)
FALSE_POSITIVE_RGB = (255, 0, 0)
FALSE_NEGATIVE_RGB = (0, 120, 255)
# Rows blended at a time: float32 temporaries of a band, not of the whole (maybe huge) photo.
BAND_ROWS = 256


def error_overlay(image, pred, true, alpha: float = 0.6) -> np.ndarray:
    """Colour TP green, FP red, FN blue over ``image`` (uint8 [H, W, 3] or grey [H, W]).

    ``alpha`` is the colour's weight in the blend (1.0 paints solid colour). Returns a new uint8
    [H, W, 3] array; the input is not modified.

    Example:
        >>> import numpy as np
        >>> grey = np.full((1, 3, 3), 100, np.uint8)
        >>> error_overlay(grey, np.array([[1, 1, 0]]), np.array([[1, 0, 1]]), alpha=1.0)[0].tolist()
        [[0, 220, 0], [255, 0, 0], [0, 120, 255]]
    """
    picture = np.asarray(image)
    if picture.ndim == 2:
        picture = np.stack([picture] * 3, axis=-1)
    if picture.ndim != 3 or picture.shape[-1] != 3 or picture.dtype != np.uint8:
        raise EvaluationInputError(
            f"image must be uint8 [H, W, 3] or [H, W]; got {picture.dtype} {picture.shape}."
        )
    if not 0.0 <= alpha <= 1.0:
        raise EvaluationInputError(f"alpha must be in [0, 1], got {alpha}.")
    pred_mask, true_mask = as_mask(pred, "pred"), as_mask(true, "true")
    same_shape(pred_mask, true_mask)
    same_shape(pred_mask, picture[..., 0], "masks and image")

    # Blended in float32 a band of rows at a time: the only full-size array is the result.
    out = np.empty(picture.shape, np.uint8)
    for top in range(0, picture.shape[0], BAND_ROWS):
        rows = slice(top, top + BAND_ROWS)
        band = picture[rows].astype(np.float32)
        pred_band, true_band = pred_mask[rows], true_mask[rows]
        for where, colour in (
            (pred_band & true_band, TRUE_POSITIVE_RGB),
            (pred_band & ~true_band, FALSE_POSITIVE_RGB),
            (~pred_band & true_band, FALSE_NEGATIVE_RGB),
        ):
            band[where] = (1.0 - alpha) * band[where] + alpha * np.asarray(colour, np.float32)
        out[rows] = np.clip(np.rint(band, out=band), 0, 255, out=band).astype(np.uint8)
    return out
