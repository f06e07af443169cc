"""Saved models reload with safe_mode=True (no Lambda layers) and predict exactly the same."""

from __future__ import annotations

import keras
import numpy as np

from fisuras.models import (
    backbone_of,
    build_classifier,
    build_segmenter,
    load_keras_model,
    make_loss,
)
from fisuras.models.layers import CaffePreprocess
from fisuras.models.trainable import backbone_is_pretrained
from tests.models.conftest import SIZE

IMAGES = np.random.default_rng(2).integers(0, 256, size=(2, SIZE, SIZE, 3)).astype("float32")


def _assert_reload_predicts_the_same(model, path):
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)

    np.testing.assert_array_equal(restored(IMAGES), model(IMAGES))
    assert type(restored.loss) is type(model.loss)
    return restored


def test_pretrained_classifier_reloads_with_safe_mode(tmp_path, mobilenet_weights_file):
    model = build_classifier("mobilenet_v2", image_size=SIZE, weights=mobilenet_weights_file[0])
    model.compile(optimizer="sgd", loss=make_loss("focal", alpha=0.75))

    restored = _assert_reload_predicts_the_same(model, tmp_path / "classifier.keras")

    assert restored.loss.get_config()["alpha"] == 0.75
    # Still known as pretrained, so fine-tuning keeps its BatchNorm frozen.
    assert backbone_is_pretrained(restored)
    frozen_bn = [layer.trainable for layer in backbone_of(restored).layers
                 if isinstance(layer, keras.layers.BatchNormalization)]
    assert frozen_bn and not any(frozen_bn)


def test_segmenter_reloads_with_safe_mode(tmp_path):
    model = build_segmenter("mobilenet_v2", image_size=SIZE, weights="none")
    model.compile(optimizer="sgd", loss=make_loss("bce_dice"))

    _assert_reload_predicts_the_same(model, tmp_path / "segmenter.keras")


def test_caffe_preprocessing_layer_reloads_with_safe_mode(tmp_path):
    # ResNet50's preprocessing is our one custom layer; a tiny model keeps this test fast.
    images = keras.Input((SIZE, SIZE, 3))
    logits = keras.layers.Conv2D(1, 3)(CaffePreprocess(name="preprocess")(images))
    model = keras.Model(images, logits)
    path = tmp_path / "tiny.keras"
    model.save(path)

    restored = load_keras_model(path)

    assert isinstance(restored.get_layer("preprocess"), CaffePreprocess)
    np.testing.assert_array_equal(restored(IMAGES), model(IMAGES))
