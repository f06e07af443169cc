"""Fixtures for the model tests: a mixed-precision policy, and pretrained-looking weight files."""

from __future__ import annotations

import keras
import pytest

SIZE = 64  # small enough for CPU; the pretrained backbones downsample 32x to 2x2


@pytest.fixture
def mixed_precision():
    """Run the test under the mixed_float16 global policy, then restore float32."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="module")
def mobilenet_weights_file(tmp_path_factory):
    """A MobileNetV2 backbone ``.weights.h5`` (random, but standing in for ImageNet weights)."""
    application = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), include_top=False, weights=None
    )
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2_notop.weights.h5"
    application.save_weights(path)
    return path, application
