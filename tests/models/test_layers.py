"""Custom layers: same values as the Keras layers they replace, one dtype in compiled graphs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fisuras.hardware.apply import precision_policy
from fisuras.models import build_segmenter, make_loss
from fisuras.models.layers import BilinearUpSampling2D

FEATURES = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype("float32")


def test_bilinear_upsampling_matches_keras_in_float32():
    ours = BilinearUpSampling2D(name="up")(FEATURES)
    reference = keras.layers.UpSampling2D(interpolation="bilinear")(FEATURES)
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    assert ours.shape == (2, 10, 14, 3)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_bilinear_upsampling_returns_the_compute_dtype(precision):
    with precision_policy(precision):
        layer = BilinearUpSampling2D()
    dtype = keras.backend.standardize_dtype(layer(FEATURES).dtype)
    assert dtype == layer.compute_dtype != "float32"


@pytest.mark.parametrize("precision", ["mixed_float16"])  # bfloat16: the plan matrix
def test_segmenter_trains_under_mixed_precision_with_xla(precision):
    """Issue 12: Keras's bilinear resize in half precision failed XLA's HLO verifier."""
    with precision_policy(precision):
        model = build_segmenter("unet_light", image_size=32, weights="none", base_filters=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss("bce_dice"),
                  jit_compile=True)
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    masks = (rng.uniform(size=(4, 32, 32, 1)) > 0.9).astype("float32")
    history = model.fit(images, masks, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.get_layer("up2").compute_dtype == precision.removeprefix("mixed_")
