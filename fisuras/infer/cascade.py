"""Cascade: a cheap classifier decides which segmenter tiles are worth segmenting.

Tile aligned: the segmenter's tile grid (:func:`fisuras.infer.tiling.tile_grid`) is the unit of
work. Each tile is scored by ONE classifier patch of the classifier's own input size, centred on
the tile (with equal sizes, patch and tile coincide). Tiles scoring at least ``threshold`` are
segmented; the rest of the mask is 0, and skipped tiles do not dilute neighbouring segmented
tiles in the blend. The cost is one classifier pass per tile plus one segmenter pass per kept
tile, so the cascade pays off when the classifier is cheaper than the segmenter and most of the
photo is crack-free. The threshold is the classifier's own (from its model card): lowering it
trades speed for fewer missed cracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fisuras.infer.tiling import (
    PredictBatch,
    patch_heatmap,
    predict_tiled,
    tile_stride,
)


@dataclass
class CascadeResult:
    """What the cascade computed for one image (grids are tile rows x tile columns)."""

    probability: np.ndarray  # float32 [H, W], 0 outside segmented tiles
    tile_scores: np.ndarray  # float32 [rows, cols], classifier crack probability per tile
    boxes: np.ndarray  # int32 [rows, cols, 4], classifier patch (y0, x0, y1, x1) clipped to image
    segmented: np.ndarray  # bool [rows, cols], tiles the segmenter ran on

    @property
    def tiles_total(self) -> int:
        return int(self.segmented.size)

    @property
    def tiles_segmented(self) -> int:
        return int(self.segmented.sum())


def score_tiles(
    predict_batch: PredictBatch,
    image: np.ndarray,
    tile: int,
    patch: int,
    overlap: float = 0.25,
    batch_size: int = 8,
    *,
    align: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Classifier probability per segmenter tile: ``(scores float32[rows, cols], boxes)``.

    The patch for a tile starts at ``tile top-left + (tile - patch) // 2``; where that runs past
    the image, the image is mirror-extended (same pad rule as the tiler). Scored by
    :func:`~fisuras.infer.tiling.patch_heatmap` on the segmenter's tile grid.

    Example:
        >>> sure = lambda batch: np.full((len(batch), 1), 3.0, np.float32)
        >>> scores, boxes = score_tiles(sure, np.zeros((320, 480, 3)), tile=128, patch=96)
        >>> scores.shape, boxes[0, 0].tolist()
        ((3, 5), [16, 16, 112, 112])
    """
    stride = tile_stride(tile, overlap, align=align)
    return patch_heatmap(predict_batch, image, patch, stride, batch_size, tile=tile)


def predict_cascade(
    detect_batch: PredictBatch,
    segment_batch: PredictBatch,
    image: np.ndarray,
    *,
    tile: int,
    patch: int,
    threshold: float = 0.5,
    overlap: float = 0.25,
    batch_size: int = 8,
    align: int = 1,
) -> CascadeResult:
    """Classify every segmenter tile, then segment only tiles scoring ``>= threshold``.

    Example:
        >>> never = lambda batch: np.full((len(batch), 1), -9.0, np.float32)
        >>> seg = lambda batch: np.full(batch.shape[:3] + (1,), 9.0, np.float32)
        >>> result = predict_cascade(never, seg, np.zeros((200, 200, 3)), tile=64, patch=64)
        >>> result.tiles_segmented, float(result.probability.max())
        (0, 0.0)
    """
    scores, boxes = score_tiles(
        detect_batch, image, tile, patch, overlap, batch_size, align=align
    )
    segmented = scores >= threshold
    probability = predict_tiled(
        segment_batch, image, tile, overlap, batch_size, align=align, keep=segmented.ravel()
    )
    return CascadeResult(probability, scores, boxes, segmented)
