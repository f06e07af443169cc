"""Custom layers: same values as the Keras layers they replace, one dtype in compiled graphs.

The segmenter's compiled training step under each policy is run by the plan matrix
(``tests/train/test_plan_matrix.py``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fisuras.hardware.apply import precision_policy
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
