"""A no-learning floor for crack segmentation: a classical black top-hat filter.

Every segmentation result is printed beside this filter's figures on the same photos, with the
same protocol (:class:`~fisuras.evaluate.segmentation.SegmentationEvaluator`, same tolerance), so
a reader sees at once whether learning paid: a model that does not beat a fixed morphological
filter has learnt nothing worth its cost.

The filter is the textbook one for cracks, which are thin lines darker than their surroundings:
the black top-hat (morphological closing minus the image) keeps exactly the dark structures too
narrow for the structuring element to fit in, and nothing brighter than its surroundings. Its
constants are fixed from the geometry of cracks, never fitted to any dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from skimage.color import rgb2gray
from skimage.morphology import black_tophat, disk

from fisuras.config import Settings
from fisuras.evaluate.segmentation import SegmentationEvaluator

__all__ = [
    "FLOOR_LABEL",
    "FLOOR_NAME",
    "FLOOR_THRESHOLD",
    "crack_filter",
    "evaluate_floor",
    "floor_entry",
]

FLOOR_NAME = "black_top_hat"
FLOOR_LABEL = "black top-hat, no learning"

# Cracks in the supported datasets are 2-18 px wide. The closing fills every dark structure the
# disk cannot fit into, so its diameter (2 * 10 + 1 = 21 px) must exceed the widest crack. A
# single radius suffices: a closing by a larger disk is never below one by a smaller disk, so a
# maximum over several radii would equal the largest one.
DISK_RADIUS = 10
# Normalise by a robust maximum, not the maximum: a few isolated black pixels (dirt, sensor
# defects) must not squash the crack's score. 0.1% of a photo is far fewer pixels than a crack.
ROBUST_PERCENTILE = 99.9
# Sensor noise and JPEG artefacts in an 8-bit photo are a few grey levels. An image whose strongest
# dark line is under 10 grey levels has no visible crack: dividing by at least this keeps its
# noise at low scores instead of stretching it to 1 (and makes a blank image score 0, not 0/0).
MIN_CONTRAST = 10 / 255
# The score is darkness relative to the image's most prominent dark line, so 0.5 is the
# half-maximum rule: a pixel is crack when it is at least half as dark against its surroundings
# as the strongest line of its photo. No dataset chose it, and ODS, OIS and AP sweep every
# threshold anyway, so only the fixed-threshold figures (IoU, Dice, tolerance F1) depend on it.
FLOOR_THRESHOLD = 0.5


def crack_filter(image: np.ndarray) -> np.ndarray:
    """Crack score in [0, 1] (float32, H x W) of an RGB uint8 photo (H x W x 3), no learning.

    Grey levels, then the black top-hat with a disk of radius ``DISK_RADIUS`` (how much darker
    each pixel is than the closing, i.e. than its surroundings with thin dark lines filled in),
    divided by its 99.9th percentile (at least ``MIN_CONTRAST``) and clipped to [0, 1].

    Example:
        >>> import numpy as np
        >>> photo = np.full((64, 64, 3), 160, np.uint8); photo[30:33] = 60  # a 3 px dark line
        >>> score = crack_filter(photo)
        >>> float(score[31, 10]), float(score[10, 10])
        (1.0, 0.0)
        >>> float(crack_filter(np.full((64, 64, 3), 160, np.uint8)).max())  # blank: no response
        0.0
    """
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise ValueError(f"crack_filter expects an RGB image (H, W, 3), got shape {pixels.shape}.")
    grey = rgb2gray(pixels)  # luminance in [0, 1]: cracks are dark whatever their hue
    darker = black_tophat(grey, disk(DISK_RADIUS))  # >= 0, zero wherever nothing thin is darker
    scale = max(float(np.percentile(darker, ROBUST_PERCENTILE)), MIN_CONTRAST)
    return np.clip(darker / scale, 0.0, 1.0).astype(np.float32)


def evaluate_floor(samples, settings: Settings) -> dict[str, dict]:
    """The floor's figures on segmentation ``samples``, by the protocol the model is scored with.

    Same evaluator, tolerance, groups and full-resolution images as
    :func:`fisuras.evaluate.run.evaluate_segmentation`; only the probability map differs (the
    filter's score) and the fixed threshold is ``FLOOR_THRESHOLD``. The result has the
    structure of :meth:`SegmentationEvaluator.result` (one entry per group).
    """
    from fisuras.data.images import read_mask, read_rgb

    evaluator = SegmentationEvaluator(
        tolerance_px=settings.segment.tolerance_px, fixed_threshold=FLOOR_THRESHOLD
    )
    for sample in samples:
        score = crack_filter(read_rgb(sample.image))
        evaluator.add(
            score, read_mask(sample.mask), group=sample.group or "all", name=Path(sample.image).stem
        )
    return evaluator.result()


def floor_entry(samples, settings: Settings) -> dict[str, Any]:
    """What ``metrics.json`` and ``evaluate_run`` store under ``"floor"``: method and figures."""
    return {
        "method": FLOOR_NAME,
        "label": FLOOR_LABEL,
        "threshold": FLOOR_THRESHOLD,
        "figures": evaluate_floor(samples, settings),
    }
