"""The error overlay of a large photo: blended in float32 bands, same colours as ever."""

from __future__ import annotations

import tracemalloc

import numpy as np

from fisuras.evaluate.overlay import (
    FALSE_NEGATIVE_RGB,
    FALSE_POSITIVE_RGB,
    TRUE_POSITIVE_RGB,
    error_overlay,
)


def test_error_overlay_of_a_large_photo_needs_about_the_result_not_float_copies():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (2000, 2000, 3), dtype=np.uint8)
    pred, true = rng.random((2000, 2000)) > 0.7, rng.random((2000, 2000)) > 0.7
    tracemalloc.start()
    try:
        out = error_overlay(photo, pred, true)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * photo.nbytes  # the result is 1x; before, float32 copies took 12x
    # every band is coloured the same way: solid colours at alpha 1, in the last rows too
    solid = error_overlay(photo, pred, true, alpha=1.0)
    for where, colour in ((pred & true, TRUE_POSITIVE_RGB), (pred & ~true, FALSE_POSITIVE_RGB),
                          (~pred & true, FALSE_NEGATIVE_RGB)):  # fmt: skip
        assert (solid[where] == colour).all()
    untouched = ~pred & ~true
    assert (out[untouched] == photo[untouched]).all()
    assert (solid[untouched] == photo[untouched]).all()
