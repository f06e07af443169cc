"""The cascade segments only the tiles its classifier calls cracked."""

from __future__ import annotations

import numpy as np

from fisuras.infer.cascade import predict_cascade, score_tiles
from fisuras.infer.runners import keras_predictor
from fisuras.infer.tiling import patch_heatmap, predict_tiled, tile_grid, tile_stride

from .conftest import bright_photo, dark_classifier, dark_segmenter


class CountingPredictor:
    """Wraps a predict_batch callable and counts the images it was asked about."""

    def __init__(self, predict):
        self.predict, self.images = predict, 0

    def __call__(self, batch):
        self.images += len(batch)
        return self.predict(batch)


def photo_with_crack() -> np.ndarray:
    """Bright 256x320 photo with one dark 3 px line in its top-left region only."""
    photo = bright_photo(256, 320)
    photo[40:43, 10:90] = 0.0
    return photo


def test_classifier_saying_no_skips_the_segmenter(cfd_image):
    never = lambda batch: np.full((len(batch), 1), -9.0, np.float32)  # noqa: E731
    segment = CountingPredictor(keras_predictor(dark_segmenter(64)))
    result = predict_cascade(never, segment, cfd_image, tile=64, patch=64)
    assert result.tiles_total == len(tile_grid(320, 480, 64, 0.25))
    assert result.tiles_segmented == 0 and segment.images == 0
    assert result.probability.shape == (320, 480) and not result.probability.any()


def test_cascade_segments_fewer_tiles_and_matches_full_run_where_it_segments():
    photo = photo_with_crack()
    detect = keras_predictor(dark_classifier(64))
    segment = CountingPredictor(keras_predictor(dark_segmenter(64)))
    result = predict_cascade(detect, segment, photo, tile=64, patch=64, threshold=0.5)
    assert 0 < result.tiles_segmented < result.tiles_total
    assert segment.images == result.tiles_segmented

    full = predict_tiled(keras_predictor(dark_segmenter(64)), photo, 64)
    # the crack is found exactly as by segmenting every tile...
    np.testing.assert_allclose(result.probability[35:50, 0:95], full[35:50, 0:95], atol=1e-5)
    assert (result.probability[40:43, 10:90] > 0.5).all()
    # ...and the crack-free rest of the photo was never segmented
    assert not result.probability[150:, 150:].any()


def test_tile_scores_use_a_patch_centred_on_each_tile():
    photo = bright_photo(256, 320)
    photo[36:52, 10:90] = 0.0  # 16 px thick: holds a whole dark 8x8 block in any patch it crosses
    detect = keras_predictor(dark_classifier(32))
    scores, boxes = score_tiles(detect, photo, tile=64, patch=32)
    assert scores.shape == boxes.shape[:2] == (5, 7)
    assert boxes[0, 0].tolist() == [16, 16, 48, 48]  # centre 32x32 of the first 64 px tile
    y0, x0, y1, x1 = np.moveaxis(boxes, -1, 0)
    sees_crack = (y0 < 52) & (y1 > 36) & (x0 < 90) & (x1 > 10)
    assert (scores[sees_crack] > 0.99).all() and (scores[~sees_crack] < 0.01).all()

    big_patch = score_tiles(keras_predictor(dark_classifier(96)), photo, tile=64, patch=96)[1]
    assert big_patch[0, 0].tolist() == [0, 0, 80, 80]  # reaches 16 px beyond the tile, clipped


def test_tile_scores_with_patch_and_tile_equal_are_the_detector_heat_map():
    photo = bright_photo(200, 300)
    photo[90:110, 40:260] = 0.0
    detect = keras_predictor(dark_classifier(64))
    scores, boxes = score_tiles(detect, photo, tile=64, patch=64, overlap=0.25, align=32)
    heat, heat_boxes = patch_heatmap(detect, photo, 64, tile_stride(64, 0.25, align=32))
    np.testing.assert_array_equal(scores, heat)
    np.testing.assert_array_equal(boxes, heat_boxes)
