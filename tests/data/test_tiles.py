"""The one tile grid: validation tiles (tf.data) and prediction tiles (the NumPy tiler) agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fisuras.data import Sample
from fisuras.data.cache_plan import tile_count
from fisuras.data.tiles import (
    TILE_ALIGN,
    TILE_OVERLAP,
    canvas_shape,
    segment_grid,
    tile_grid,
    tile_stride,
)
from tests.data.helpers import stripe_mask, write_image, write_mask


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "align"),
    [(320, 480, 64, 0.25, 1), (320, 480, 96, 0.25, 32), (50, 40, 64, 0.25, 1), (64, 65, 64, 0.5, 1),
     (1, 1000, 128, 0.1, 1)],
)  # fmt: skip
def test_tile_grid_covers_image_with_one_stride(height, width, tile, overlap, align):
    tiles = tile_grid(height, width, tile, overlap, align=align)
    covered = np.zeros(canvas_shape(tiles, tile), bool)
    for y, x in tiles:
        covered[y : y + tile, x : x + tile] = True
    assert covered[:height, :width].all()
    stride = tile_stride(tile, overlap, align=align)
    assert {x for _, x in tiles} == set(range(0, max(x for _, x in tiles) + 1, stride))
    # the canvas overhangs the image by less than one stride (no useless extra tile row)
    canvas_h, canvas_w = canvas_shape(tiles, tile)
    assert canvas_h - height < max(stride, tile) and canvas_w - width < max(stride, tile)


def test_aligned_stride_is_a_multiple_and_never_less_overlap():
    for tile in (64, 96, 128, 224, 256):
        plain, aligned = tile_stride(tile, 0.25), tile_stride(tile, 0.25, align=32)
        assert aligned % 32 == 0 and aligned <= plain


def test_the_segmentation_grid_is_aligned_and_counted_alike():
    for tile in (64, 96, 256):
        corners = segment_grid(600, 900, tile)
        assert all(y % TILE_ALIGN == 0 and x % TILE_ALIGN == 0 for y, x in corners)
        assert tile_count(600, 900, tile) == len(corners)


@pytest.mark.parametrize("side", [64, 96])
def test_validation_tiles_are_the_prediction_tiles_of_the_same_image(tmp_path: Path, side):
    """The tf.data validation tiles equal, pixel for pixel and in order, the crops the tiler
    feeds a segmenter in prediction: same corners, same 32-px alignment, same mirrored border."""
    pytest.importorskip("tensorflow")
    from fisuras.data.pipeline import make_dataset
    from fisuras.infer.tiling import predict_tiled

    height, width = 150, 230  # not a multiple of any stride: the last tiles run past both edges
    image_path = write_image(tmp_path / "images" / "a.png", seed=5, size=(height, width))
    mask = stripe_mask((height, width), column=width - 9, width=4)  # at the right edge
    mask_path = write_mask(tmp_path / "masks" / "a.png", mask)
    dataset = make_dataset([Sample(str(image_path), 1, mask=str(mask_path))], task="segment",
                           image_size=side, batch_size=4, training=False, cache="none")
    validation = [(x.numpy(), y.numpy()) for x, y in dataset]
    images = np.concatenate([x for x, _ in validation])
    masks = np.concatenate([y for _, y in validation])[..., 0] > 0.5

    seen: list[np.ndarray] = []

    def record(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.copy())
        return np.zeros((*batch.shape[:3], 1), np.float32)

    predict_tiled(record, np.asarray(Image.open(image_path)), side, TILE_OVERLAP, batch_size=4,
                  align=TILE_ALIGN)
    predicted = np.concatenate(seen)

    corners = segment_grid(height, width, side)
    assert len(images) == len(predicted) == len(corners) == tile_count(height, width, side)
    assert dataset.cardinality().numpy() == len(validation)  # known in advance, for Keras
    np.testing.assert_array_equal(images, predicted.astype(np.uint8))
    # the masks are cut on the same grid, from the same mirrored canvas
    canvas_h, canvas_w = canvas_shape(corners, side)
    canvas = np.pad(mask, ((0, canvas_h - height), (0, canvas_w - width)), mode="reflect")
    expected = np.stack([canvas[y : y + side, x : x + side] for y, x in corners])
    np.testing.assert_array_equal(masks, expected)
    assert canvas[:height, width:].any()  # the edge crack, mirrored into the border
