"""Freezing / unfreezing the backbone, and BatchNorm staying frozen while fine-tuning."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from fisuras.models import (
    backbone_of,
    build_classifier,
    make_loss,
    set_backbone_trainable,
)
from fisuras.models.backbones import all_layers, faster_batch_norm_statistics, freeze_batch_norm
from fisuras.models.trainable import backbone_is_pretrained
from tests.models.conftest import SIZE

RNG = np.random.default_rng(3)
IMAGES = RNG.integers(0, 256, size=(4, SIZE, SIZE, 3)).astype("float32")
LABELS = np.array([[1.0], [0.0], [1.0], [0.0]], "float32")


def _training_step(model) -> None:
    """One SGD step as ``Model.train_step`` does it (eager: a traced fit costs ~15 s here)."""
    with tf.GradientTape() as tape:
        loss = make_loss("bce")(LABELS, model(IMAGES, training=True))
    gradients = tape.gradient(loss, model.trainable_variables)
    keras.optimizers.SGD(0.1).apply(gradients, model.trainable_variables)


def _batch_norm_stats(model) -> list[np.ndarray]:
    return [np.array(layer.moving_mean) for layer in backbone_of(model).layers
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
    frozen = len(model.trainable_weights)
    set_backbone_trainable(model, True, fine_tune_from=-20)
    partly = len(model.trainable_weights)
    set_backbone_trainable(model, True)
    unfrozen = len(model.trainable_weights)

    assert frozen == 2  # the Dense head: kernel and bias
    assert frozen < partly < unfrozen
    bn_gammas = {id(layer.gamma) for layer in backbone_of(model).layers
                 if isinstance(layer, keras.layers.BatchNormalization)}
    assert not bn_gammas & {id(weight) for weight in model.trainable_weights}
    with pytest.raises(ValueError, match="outside the backbone"):
        set_backbone_trainable(model, True, fine_tune_from=10_000)


def test_batch_norm_statistics_stay_put_when_fine_tuning(pretrained_classifier):
    model = pretrained_classifier
    set_backbone_trainable(model, True)
    stats_before, kernels_before = _batch_norm_stats(model), _conv_kernels(model)

    _training_step(model)

    for before, after in zip(stats_before, _batch_norm_stats(model), strict=True):
        np.testing.assert_array_equal(before, after)
    kernels_after = _conv_kernels(model)
    changed = [not np.array_equal(b, a) for b, a in zip(kernels_before, kernels_after, strict=True)]
    assert all(changed)  # the backbone really trained


def test_random_backbone_keeps_learning_batch_norm_statistics():
    # From scratch there are no statistics worth keeping: BatchNorm must work normally, also
    # after a frozen phase and unfreezing, as the training engine does.
    model = build_classifier("mobilenet_v2", image_size=SIZE, weights="none")
    assert not backbone_is_pretrained(model)
    set_backbone_trainable(model, False)
    set_backbone_trainable(model, True)
    stats_before = _batch_norm_stats(model)

    _training_step(model)

    assert not np.array_equal(stats_before[0], _batch_norm_stats(model)[0])


def test_models_without_backbone_train_whole_and_refuse_to_freeze():
    model = build_classifier("small_cnn", image_size=SIZE, weights="none")
    count = len(model.trainable_weights)

    set_backbone_trainable(model, True)  # nothing to do: everything trains

    assert backbone_of(model) is None
    assert len(model.trainable_weights) == count
    with pytest.raises(ValueError, match="no pretrained backbone"):
        set_backbone_trainable(model, False)



def test_the_layer_walk_reaches_nested_models_and_the_batch_norm_helpers_use_it():
    inner = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.BatchNormalization(name="bn1")],
                             name="inner")
    middle = keras.Sequential([keras.Input((4, 4, 3)), inner,
                               keras.layers.BatchNormalization(name="bn2")], name="middle")
    images = keras.Input((4, 4, 3))
    model = keras.Model(images, keras.layers.Conv2D(1, 1, name="head")(middle(images)))
    names = [layer.name for layer in all_layers(model)]
    assert names[1:] == ["middle", "inner", "bn1", "bn2", "head"]  # after the input layer
    freeze_batch_norm(model)
    faster_batch_norm_statistics(model)
    norms = [layer for layer in all_layers(model)
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert [(n.trainable, n.momentum) for n in norms] == [(False, 0.9), (False, 0.9)]
