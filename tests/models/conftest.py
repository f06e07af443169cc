"""Fixtures for the model tests: a mixed-precision policy, and pretrained-looking weight files."""

from __future__ import annotations

import keras
import numpy as np
import pytest

SIZE = 64  # small enough for CPU; the pretrained backbones downsample 32x to 2x2


@pytest.fixture
def mixed_precision():
    """Run the test under the mixed_float16 global policy, then restore float32."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def mobilenet_weights_file(tmp_path_factory):
    """A MobileNetV2 backbone ``.weights.h5`` standing in for the ImageNet file (offline).

    Random weights, but with BatchNorm statistics calibrated on one batch, as trained weights
    have: with the initial 0/1 statistics a frozen-BN MobileNetV2 passes almost no signal and its
    gradients vanish (about 1e-12), which would make fine-tuning tests meaningless.
    """
    application = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), include_top=False, weights=None
    )
    batch_norms = [layer for layer in application.layers
                   if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in batch_norms:
        layer.momentum = 0.0  # the next training-mode pass sets the statistics to the batch's
    images = np.random.default_rng(5).uniform(-1, 1, size=(8, SIZE, SIZE, 3)).astype("float32")
    application(images, training=True)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_notop.weights.h5"
    application.save_weights(path)
    return path, application
