"""Freezing / unfreezing the backbone, and BatchNorm staying frozen while fine-tuning."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fisuras.models import backbone_of, build_classifier, make_loss, set_backbone_trainable
from tests.models.conftest import SIZE

RNG = np.random.default_rng(3)
IMAGES = RNG.integers(0, 256, size=(4, SIZE, SIZE, 3)).astype("float32")
LABELS = np.array([[1.0], [0.0], [1.0], [0.0]], "float32")


def _count(weights) -> int:
    return len(weights)


def _batch_norm_stats(model) -> list[np.ndarray]:
    encoder = backbone_of(model)
    return [np.array(layer.moving_mean) for layer in encoder.layers
            if isinstance(layer, keras.layers.BatchNormalization)]


def _conv_kernels(model) -> list[np.ndarray]:
    return [np.array(layer.kernel) for layer in backbone_of(model).layers
            if isinstance(layer, keras.layers.Conv2D)]


@pytest.fixture
def pretrained_classifier(mobilenet_weights_file):
    path, _ = mobilenet_weights_file
    return build_classifier("mobilenet_v2", image_size=SIZE, weights=path)


def test_freezing_and_unfreezing_change_the_trainable_weights(pretrained_classifier):
    model = pretrained_classifier

    set_backbone_trainable(model, False)
    frozen = _count(model.trainable_weights)
    set_backbone_trainable(model, True, fine_tune_from=-20)
    partly = _count(model.trainable_weights)
    set_backbone_trainable(model, True)
    unfrozen = _count(model.trainable_weights)

    assert frozen == 2  # the Dense head: kernel and bias
    assert frozen < partly < unfrozen
    bn_gammas = [layer.gamma for layer in backbone_of(model).layers
                 if isinstance(layer, keras.layers.BatchNormalization)]
    trainable_ids = {id(weight) for weight in model.trainable_weights}
    assert not any(id(gamma) in trainable_ids for gamma in bn_gammas)


def test_batch_norm_statistics_stay_put_when_fine_tuning(pretrained_classifier):
    model = pretrained_classifier
    set_backbone_trainable(model, True)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=make_loss("bce"))
    stats_before, kernels_before = _batch_norm_stats(model), _conv_kernels(model)

    model.train_on_batch(IMAGES, LABELS)

    for before, after in zip(stats_before, _batch_norm_stats(model), strict=True):
        np.testing.assert_array_equal(before, after)
    changed = [not np.array_equal(b, a) for b, a in zip(kernels_before, _conv_kernels(model))]
    assert all(changed)  # the backbone really trained


def test_random_backbone_keeps_learning_batch_norm_statistics():
    # From scratch there are no statistics worth keeping: BatchNorm must work normally.
    model = build_classifier("mobilenet_v2", image_size=SIZE, weights="none")
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=make_loss("bce"))
    stats_before = _batch_norm_stats(model)

    model.train_on_batch(IMAGES, LABELS)

    assert not np.array_equal(stats_before[0], _batch_norm_stats(model)[0])


def test_models_without_backbone_refuse_to_freeze():
    model = build_classifier("small_cnn", image_size=SIZE, weights="none")

    assert backbone_of(model) is None
    with pytest.raises(ValueError, match="no pretrained backbone"):
        set_backbone_trainable(model, False)


def test_fine_tune_from_out_of_range_is_refused(pretrained_classifier):
    with pytest.raises(ValueError, match="outside the backbone"):
        set_backbone_trainable(pretrained_classifier, True, fine_tune_from=10_000)
