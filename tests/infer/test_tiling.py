"""Tiling on real CFD photos: one tile equals the direct prediction, and seams do not show."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.special import expit

from fisuras.infer import tiling
from fisuras.infer.runners import keras_predictor
from fisuras.infer.tiling import (
    blend_weights,
    patch_heatmap,
    predict_tiled,
)

from .conftest import FCN_RADIUS, bright_photo, dark_classifier, fcn_segmenter, make_segmenter

TILE_SIZES = (64, 96, 128)


def test_blend_weights_peak_in_centre_and_stay_positive():
    weights = blend_weights(64)
    assert weights.shape == (64, 64) and weights.dtype == np.float32
    assert (weights > 0).all()
    peak = np.unravel_index(weights.argmax(), weights.shape)
    assert peak in {(31, 31), (31, 32), (32, 31), (32, 32)}
    np.testing.assert_allclose(weights, weights[::-1, ::-1])
    assert weights[0, 32] < 0.01 * weights[32, 32]


@pytest.mark.parametrize("tile", TILE_SIZES)
def test_one_tile_equals_direct_prediction(cfd_image, tile):
    """A crop of exactly the model size is one tile: same numbers as calling the model."""
    model = make_segmenter(tile)
    crop = cfd_image[17 : 17 + tile, 41 : 41 + tile]
    direct = expit(model.predict_on_batch(crop[None])[0, ..., 0])
    tiled = predict_tiled(keras_predictor(model), crop, tile, overlap=0.25)
    np.testing.assert_allclose(tiled, direct, rtol=0, atol=1e-6)


def test_small_image_is_padded_at_bottom_right_only(cfd_image):
    """A 50x40 crop fits one 64 px tile; away from the mirrored bottom/right border the result
    equals the fully convolutional model run on the crop itself (any pad shift would show)."""
    model = fcn_segmenter()
    crop = cfd_image[100:150, 200:240]
    direct = expit(model.predict_on_batch(crop[None])[0, ..., 0])
    tiled = predict_tiled(keras_predictor(model), crop, 64)
    assert tiled.shape == (50, 40)
    keep = slice(0, -FCN_RADIUS)
    np.testing.assert_allclose(tiled[keep, keep], direct[keep, keep], atol=1e-6)
    # the last rows do see the mirror image instead of zero padding, so they may differ
    assert not np.allclose(tiled[-1], direct[-1], atol=1e-6)


@pytest.mark.parametrize("tile", TILE_SIZES)
def test_seams_do_not_show(cfd_image, tile, monkeypatch):
    """Tiled output of a translation-equivariant model vs its full-photo prediction.

    Away from the bottom/right border (mirror padding there), the only error left is at tile
    edges, where a tile sees zero padding instead of its neighbour's pixels (3 px deep for this
    model). The Hann weights give a pixel 3 px from one tile's edge a weight of at most
    sin^2(pi*3.5/64) / sin^2(pi*13.5/64) ~= 0.08 relative to the neighbour that sees it 13+ px
    inside (25% overlap, 64 px tiles; larger tiles do better), where plain averaging gives 1.
    So the blended seam error must stay below ~0.16x the plain-average seam error (bound 0.2).
    """
    model = fcn_segmenter()
    direct = expit(model.predict_on_batch(cfd_image[None])[0, ..., 0])
    predict = keras_predictor(model)
    interior = (slice(0, -FCN_RADIUS), slice(0, -FCN_RADIUS))

    blended = predict_tiled(predict, cfd_image, tile, overlap=0.25)
    blended_error = np.abs(blended - direct)[interior].max()
    monkeypatch.setattr(tiling, "blend_weights", lambda t: np.ones((t, t), np.float32))
    averaged = predict_tiled(predict, cfd_image, tile, overlap=0.25)
    averaged_error = np.abs(averaged - direct)[interior].max()

    assert averaged_error > 1e-4, "tile edges should visibly matter without weighting"
    assert blended_error < 0.2 * averaged_error


def test_heatmap_finds_the_dark_patch_and_scores_exact_size_directly():
    classifier = dark_classifier(64)
    predict = keras_predictor(classifier)
    photo = bright_photo(150, 230)
    photo[120:136, 200:216] = 0.0  # a dark block near the bottom-right corner
    heat, boxes = patch_heatmap(predict, photo, patch=64, stride=48)
    assert heat.shape == (3, 5) and boxes.shape == (3, 5, 4)
    y0, x0, y1, x1 = np.moveaxis(boxes, -1, 0)
    touches_block = (y0 < 136) & (y1 > 120) & (x0 < 216) & (x1 > 200)
    assert touches_block.sum() >= 2  # the block straddles patches
    assert (heat[~touches_block] < 0.01).all() and heat.max() > 0.99
    assert boxes[-1, -1, 2:].tolist() == [150, 230]  # clipped to the photo

    exact = bright_photo(64, 64)
    heat_one, _ = patch_heatmap(predict, exact, patch=64, stride=48)
    assert heat_one.shape == (1, 1)
    direct = expit(classifier.predict_on_batch(exact[None]))[0, 0]
    np.testing.assert_allclose(heat_one[0, 0], direct, atol=1e-6)


def test_wrong_kind_of_model_is_named():
    segmenter_like = lambda batch: np.zeros(batch.shape[:3] + (1,), np.float32)  # noqa: E731
    with pytest.raises(ValueError, match="segmenter"):
        patch_heatmap(segmenter_like, bright_photo(64, 64), patch=64, stride=32)
    classifier_like = lambda batch: np.zeros((len(batch), 1), np.float32)  # noqa: E731
    with pytest.raises(ValueError, match="classifier"):
        predict_tiled(classifier_like, bright_photo(64, 64), 64)


def test_a_large_uint8_photo_is_never_copied_whole_to_float32():
    # issue 14: a float32 copy of the photo and of its padded canvas (770 MB each at 8000 px)
    photo = np.random.default_rng(0).integers(0, 256, (2000, 2000, 3), dtype=np.uint8)
    seen = []

    def darkness(batch):
        seen.append(batch.dtype)
        return (20 * (1 - batch.mean(axis=-1, keepdims=True) / 255) - 10).astype(np.float32)

    tracemalloc.start()
    try:
        probability = predict_tiled(darkness, photo, 256, 0.25, 8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the blended sums and weights (2 x 4 bytes a pixel) and a uint8 canvas; before: 17x
    assert peak < 7 * photo.nbytes
    assert set(seen) == {np.dtype(np.float32)}  # the model still gets 0..255 floats
    assert probability.shape == (2000, 2000) and probability.dtype == np.float32
    # converting each batch instead of the photo changes nothing
    small = photo[:300, :420]
    np.testing.assert_array_equal(predict_tiled(darkness, small, 128),
                                  predict_tiled(darkness, small.astype(np.float32), 128))
