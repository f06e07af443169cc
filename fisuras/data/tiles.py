"""The tile grid: where the tiles of a photo sit. One rule for validation and prediction.

Tiles of side ``tile`` sit on a regular grid starting at the top-left corner, ``stride`` apart
(:func:`tile_grid`); when the last tile runs past the bottom or right edge, the image is extended
there by mirror reflection (``numpy.pad(mode="reflect")`` in :mod:`fisuras.infer.tiling`,
``tf.pad(mode="REFLECT")`` in the validation pipeline). With ``align`` (32 for a U-Net that pools
5 times) the stride is a multiple of 32, so every tile sees every pixel at the same phase of its
pooling grid as a full-image run would.

Segmentation uses one grid everywhere, :func:`segment_grid` (``TILE_OVERLAP``, ``TILE_ALIGN``):
the validation tiles of training (:mod:`fisuras.data.pipeline`), the validation run that chooses
the threshold (:mod:`fisuras.evaluate.run`) and prediction (:mod:`fisuras.infer.predict`); so the
threshold is chosen under the tiling it is applied with. Pure Python: no NumPy, no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# U-Net encoders downsample up to 32x: a tile stride that is a multiple of 32 keeps every tile's
# pooling grid in phase with the photo's, so overlapping tiles agree.
TILE_ALIGN = 32
TILE_OVERLAP = 0.25  # prediction's default (``fisuras predict --tile-overlap``)


def tile_stride(tile: int, overlap: float, *, align: int = 1) -> int:
    """Distance between neighbouring tiles for a fractional ``overlap`` in [0, 1).

    With ``align > 1`` the stride is rounded *down* to a multiple of ``align`` (more overlap, never
    less), unless the stride is already smaller than ``align``.

    Example:
        >>> tile_stride(256, 0.25), tile_stride(96, 0.25), tile_stride(96, 0.25, align=32)
        (192, 72, 64)
    """
    if tile < 1:
        raise ValueError(f"tile size must be at least 1 pixel, got {tile}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    stride = max(1, tile - round(tile * overlap))
    if align > 1 and stride >= align:
        stride = stride // align * align
    return stride


def grid_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis: ``0, stride, 2*stride...`` until ``length`` is covered.

    Example:
        >>> grid_starts(480, 128, 96), grid_starts(50, 128, 96)
        ([0, 96, 192, 288, 384], [0])
    """
    if length < 1:
        raise ValueError(f"image side must be at least 1 pixel, got {length}")
    count = 1 if length <= tile else math.ceil((length - tile) / stride) + 1
    return [i * stride for i in range(count)]


def tile_grid(
    height: int, width: int, tile: int, overlap: float, *, align: int = 1
) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the tiles covering a ``height x width`` image, row by row.

    The padded canvas the tiles live on is ``(max y + tile, max x + tile)`` (:func:`canvas_shape`).

    Example:
        >>> tile_grid(320, 480, 256, 0.25)
        [(0, 0), (0, 192), (0, 384), (192, 0), (192, 192), (192, 384)]
    """
    stride = tile_stride(tile, overlap, align=align)
    ys, xs = grid_starts(height, tile, stride), grid_starts(width, tile, stride)
    return [(y, x) for y in ys for x in xs]


def segment_grid(
    height: int, width: int, tile: int, overlap: float = TILE_OVERLAP
) -> list[tuple[int, int]]:
    """The segmentation grid: :func:`tile_grid` with the 32-px alignment, for validation tiles,
    the threshold's validation run and prediction alike.

    Example:
        >>> segment_grid(320, 480, 256)  # stride 192: already a multiple of 32
        [(0, 0), (0, 192), (0, 384), (192, 0), (192, 192), (192, 384)]
    """
    return tile_grid(height, width, tile, overlap, align=TILE_ALIGN)


def canvas_shape(tiles: Sequence[tuple[int, int]], tile: int) -> tuple[int, int]:
    """Height and width of the padded canvas a tile grid covers."""
    return max(y for y, _ in tiles) + tile, max(x for _, x in tiles) + tile
