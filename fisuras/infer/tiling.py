"""Run a fixed-size model over a photo of any size: overlapping tiles, blended, and patch heat maps.

Pad rule: tiles sit on the grid of :mod:`fisuras.data.tiles` (the one rule, shared with the
validation tiles of training), starting at the top-left corner, ``stride`` apart; when the last
tile runs past the bottom or right edge, the image is extended there by *mirror reflection*
(``numpy.pad(mode="reflect")``) and the result cropped back.
Reflection keeps pavement texture at the border, where zero (black) padding would draw a dark edge
that a crack model readily mistakes for a crack. Consequences:

* an image exactly the tile size is one tile, untouched: the tiled prediction *is* the direct one;
* a smaller image is one tile holding the image at its top-left corner plus its mirror image;
* all tiles are ``stride`` apart (no shifted last tile), so with ``align`` (e.g. 32 for a U-Net
  that pools 5 times) every tile sees every pixel at the same phase of its pooling grid as a
  full-image run would.

Blending: each tile's probabilities are weighted by :func:`blend_weights` (high in the centre,
low at the edges, never zero) and the weighted sum is divided by the summed weights, so a pixel
near one tile's edge takes its value mostly from the neighbouring tile that sees it centrally.

Everything here is NumPy; the model enters only through ``predict_batch``, a callable taking
float32 ``[N, T, T, 3]`` images (0..255) and returning float32 logits (``[N, T, T, 1]`` for a
segmenter, ``[N, 1]`` for a classifier). See :mod:`fisuras.infer.runners` for Keras and ONNX ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
from scipy.special import expit

from fisuras.data.tiles import canvas_shape, grid_starts, tile_grid, tile_stride

__all__ = [  # the grid functions are fisuras.data.tiles', used here and offered with the tiler
    "EDGE_WEIGHT_FLOOR", "PredictBatch", "as_rgb_image", "batches", "blend_weights",
    "canvas_shape", "crop_batch", "grid_starts", "pad_bottom_right", "patch_heatmap",
    "predict_tiled", "tile_grid", "tile_stride",
]

PredictBatch = Callable[[np.ndarray], np.ndarray]
# Weight at a tile's very edge relative to its centre. Not zero, so that pixels covered only by a
# tile edge (the image border) still get a value; small, so that in overlaps the neighbour wins.
EDGE_WEIGHT_FLOOR = 1e-3


def pad_bottom_right(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mirror-extend ``image`` ([H, W, C]) at the bottom and right to ``height x width``."""
    extra_y, extra_x = height - image.shape[0], width - image.shape[1]
    if extra_y < 0 or extra_x < 0:
        raise ValueError(f"cannot pad a {image.shape[:2]} image down to {(height, width)}")
    if extra_y == 0 and extra_x == 0:
        return image
    return np.pad(image, ((0, extra_y), (0, extra_x), (0, 0)), mode="reflect")


def blend_weights(tile: int, floor: float = EDGE_WEIGHT_FLOOR) -> np.ndarray:
    """float32 ``[tile, tile]`` weights: outer product of two 1-D Hann ramps lifted by ``floor``.

    The ramp is sampled at pixel centres, ``sin(pi * (i + 0.5) / tile) ** 2``, so it is symmetric
    and positive. The floor is added to each 1-D ramp, not to the 2-D product: along the image
    border, where every covering tile is at its edge in one direction, the weights then still
    favour the tile that sees the pixel centrally in the other direction.

    Example:
        >>> w = blend_weights(64)
        >>> bool(w[32, 32] > 0.99), bool(w[0, 0] < 0.01), bool((w > 0).all())
        (True, True, True)
    """
    ramp = floor + (1.0 - floor) * np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2
    return np.outer(ramp, ramp).astype(np.float32)


def batches(items: Sequence, batch_size: int) -> Iterator[Sequence]:
    """Consecutive slices of at most ``batch_size`` items."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def as_rgb_image(image: np.ndarray) -> np.ndarray:
    """Check an RGB ``[H, W, 3]`` image; its dtype is kept (uint8 photos stay 1 byte a value)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}")
    return image


def crop_batch(canvas: np.ndarray, corners: Sequence[tuple[int, int]], size: int) -> np.ndarray:
    """float32 ``[N, size, size, 3]`` crops at ``corners`` (models take 0..255 floats).

    Only the batch is converted: a float32 copy of a whole 8000 x 8000 photo (and of its padded
    canvas) would be 770 MB each.
    """
    return np.stack([canvas[y : y + size, x : x + size] for y, x in corners]).astype(
        np.float32, copy=False
    )


def predict_tiled(
    predict_batch: PredictBatch,
    image: np.ndarray,
    tile: int,
    overlap: float = 0.25,
    batch_size: int = 8,
    *,
    align: int = 1,
    keep: Sequence[bool] | np.ndarray | None = None,
) -> np.ndarray:
    """Crack probability float32 ``[H, W]`` from a segmenter run on overlapping, blended tiles.

    ``keep`` (one flag per tile of :func:`tile_grid`, same order) skips tiles: pixels that no kept
    tile covers get probability 0, and skipped tiles do not dilute their neighbours (the cascade
    uses this).

    Example:
        >>> flat = lambda batch: np.zeros(batch.shape[:3] + (1,), np.float32)  # logit 0 -> 0.5
        >>> predict_tiled(flat, np.zeros((100, 70, 3)), tile=64).shape
        (100, 70)
    """
    image = as_rgb_image(image)
    height, width = image.shape[:2]
    all_tiles = tile_grid(height, width, tile, overlap, align=align)
    tiles = all_tiles
    if keep is not None:
        if len(keep) != len(all_tiles):
            raise ValueError(f"keep has {len(keep)} flags for {len(all_tiles)} tiles")
        tiles = [t for t, flag in zip(all_tiles, keep, strict=True) if flag]
    if not tiles:
        return np.zeros((height, width), np.float32)
    canvas_h, canvas_w = canvas_shape(all_tiles, tile)
    canvas = pad_bottom_right(image, canvas_h, canvas_w)
    weights = blend_weights(tile)
    weighted_sum = np.zeros((canvas_h, canvas_w), np.float32)
    weight_total = np.zeros((canvas_h, canvas_w), np.float32)
    for group in batches(tiles, batch_size):
        batch = crop_batch(canvas, group, tile)
        logits = np.asarray(predict_batch(batch), dtype=np.float32)
        if logits.shape != (len(group), tile, tile, 1):
            raise ValueError(
                f"segmenter returned shape {logits.shape} for {batch.shape[0]} tiles of {tile} px; "
                f"expected {(len(group), tile, tile, 1)} (is this a classifier?)"
            )
        probabilities = expit(logits[..., 0])
        for (y, x), prob in zip(group, probabilities, strict=True):
            weighted_sum[y : y + tile, x : x + tile] += weights * prob
            weight_total[y : y + tile, x : x + tile] += weights
    # In place: no further canvas-size arrays (pixels no kept tile covers stay 0).
    np.divide(weighted_sum, weight_total, out=weighted_sum, where=weight_total > 0)
    return weighted_sum[:height, :width]


def patch_heatmap(
    predict_batch: PredictBatch,
    image: np.ndarray,
    patch: int,
    stride: int,
    batch_size: int = 8,
    *,
    tile: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Score classifier patches on a tile grid: ``(heat float32[rows, cols], boxes)``.

    The one patch scorer (the detector's heat map, the cascade's tile scores). The grid is that
    of tiles of side ``tile`` (default: ``patch``) ``stride`` apart; each cell's patch is centred
    on its tile, starting at ``tile corner + (tile - patch) // 2``. ``heat`` holds crack
    probabilities (sigmoid of the logits); ``boxes`` (int32 ``[rows, cols, 4]``) the patch each
    cell scored, as ``(y0, x0, y1, x1)`` clipped to the image (patches running past the edge see
    the mirror-extended image, by the module's pad rule). An image of exactly ``patch x patch``
    is scored directly as one cell.

    Example:
        >>> sure = lambda batch: np.full((len(batch), 1), 5.0, np.float32)
        >>> heat, boxes = patch_heatmap(sure, np.zeros((300, 397, 3)), patch=227, stride=170)
        >>> heat.shape, boxes[-1, -1].tolist()
        ((2, 2), [170, 170, 300, 397])
    """
    image = as_rgb_image(image)
    height, width = image.shape[:2]
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    tile = patch if tile is None else tile
    ys, xs = grid_starts(height, tile, stride), grid_starts(width, tile, stride)
    canvas = pad_bottom_right(image, ys[-1] + tile, xs[-1] + tile)
    offset = (tile - patch) // 2  # patch corner relative to tile corner; negative if patch > tile
    margin = max(0, -offset, offset + patch - tile)
    if margin:
        canvas = np.pad(canvas, ((margin, margin), (margin, margin), (0, 0)), mode="reflect")
    corners = [(y + offset, x + offset) for y in ys for x in xs]
    scores: list[np.ndarray] = []
    for group in batches(corners, batch_size):
        batch = crop_batch(canvas, [(y + margin, x + margin) for y, x in group], patch)
        logits = np.asarray(predict_batch(batch), dtype=np.float32).reshape(len(group), -1)
        if logits.shape[1] != 1:
            raise ValueError(
                f"classifier returned {logits.shape[1]} values per patch; expected one logit "
                "(is this a segmenter?)"
            )
        scores.append(expit(logits[:, 0]))
    heat = np.concatenate(scores).astype(np.float32).reshape(len(ys), len(xs))
    boxes = np.array(
        [(max(0, y), max(0, x), min(height, y + patch), min(width, x + patch))
         for y, x in corners],
        dtype=np.int32,
    ).reshape(len(ys), len(xs), 4)
    return heat, boxes
