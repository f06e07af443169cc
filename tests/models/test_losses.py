"""Losses: hand cases, float16 safety, per-image Dice and serialisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fisuras.models import LOSSES, make_loss

BIG = 30.0  # a logit this large is a sigmoid of 1 - 1e-13: a "certain" prediction

RNG = np.random.default_rng(1)
MASKS = (RNG.uniform(size=(3, 16, 16, 1)) < 0.1).astype("float32")  # ~10 % crack pixels


def _value(loss, y_true, logits) -> float:
    return float(loss(y_true, logits))


@pytest.mark.parametrize("name", ["dice", "tversky", "bce_dice", "bce", "focal"])
def test_perfect_prediction_gives_about_zero(name):
    logits = np.where(MASKS > 0, BIG, -BIG).astype("float32")

    assert _value(make_loss(name), MASKS, logits) == pytest.approx(0.0, abs=1e-5)


def test_opposite_prediction_gives_dice_about_one():
    logits = np.where(MASKS > 0, -BIG, BIG).astype("float32")

    assert _value(make_loss("dice"), MASKS, logits) == pytest.approx(1.0, abs=0.01)


def test_dice_is_per_image_and_matches_the_formula():
    # Two images with very different crack areas: a batch-wide Dice would differ from this.
    probs = RNG.uniform(0.01, 0.99, size=MASKS.shape).astype("float32")
    logits = np.log(probs / (1 - probs))
    smooth = 1.0
    tp = (MASKS * probs).sum(axis=(1, 2, 3))
    per_image = 1 - (2 * tp + 2 * smooth) / (MASKS.sum((1, 2, 3)) + probs.sum((1, 2, 3)) + 2)

    assert _value(make_loss("dice", smooth=smooth), MASKS, logits) == pytest.approx(
        per_image.mean(), rel=1e-5
    )


def test_empty_mask_predicted_empty_is_perfect_for_dice():
    empty = np.zeros((1, 16, 16, 1), "float32")

    assert _value(make_loss("dice"), empty, np.full_like(empty, -BIG)) == pytest.approx(0, abs=1e-6)


def test_tversky_with_equal_weights_is_dice():
    logits = RNG.normal(0, 3, size=MASKS.shape).astype("float32")

    tversky = _value(make_loss("tversky", alpha=0.5, beta=0.5), MASKS, logits)

    assert tversky == pytest.approx(_value(make_loss("dice"), MASKS, logits), rel=1e-6)


def test_tversky_alpha_weighs_false_positives():
    labels = np.zeros((1, 4, 4, 1), "float32")
    labels[0, 0, 0] = 1
    false_positive_everywhere = np.full_like(labels, BIG)

    harsh = _value(make_loss("tversky", alpha=0.9, beta=0.1), labels, false_positive_everywhere)
    mild = _value(make_loss("tversky", alpha=0.1, beta=0.9), labels, false_positive_everywhere)

    assert harsh > mild


def test_focal_is_smaller_than_bce_on_easy_examples():
    labels = np.array([[1.0], [0.0], [1.0]], "float32")
    easy = np.array([[3.0], [-3.0], [4.0]], "float32")  # right side, confidently

    assert _value(make_loss("focal"), labels, easy) < 0.1 * _value(make_loss("bce"), labels, easy)


def test_bce_accepts_flat_labels_for_column_logits():
    labels = np.array([1, 0, 1], "uint8")
    logits = np.array([[2.0], [-1.0], [0.5]], "float32")

    expected = np.mean(np.log1p(np.exp(-np.where(labels == 1, 1, -1) * logits.ravel())))
    assert _value(make_loss("bce"), labels, logits) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_large_float16_logits_give_finite_loss_and_gradient(name):
    import tensorflow as tf

    logits = tf.constant(np.where(MASKS > 0, -60000.0, 60000.0), dtype="float16")  # fp16 max 65504
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = make_loss(name)(MASKS, logits)
    gradient = tape.gradient(loss, logits)

    assert loss.dtype == "float32"
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert np.isfinite(gradient.numpy().astype("float32")).all()


@pytest.mark.parametrize(
    ("name", "options"),
    [("bce", {}), ("bce_dice", {"dice_weight": 2.0}), ("dice", {"smooth": 0.5}),
     ("focal", {"alpha": 0.75, "gamma": 1.5}), ("tversky", {"alpha": 0.3, "beta": 0.7})],
)
def test_losses_round_trip_through_keras_serialisation(name, options):
    loss = make_loss(name, **options)
    logits = RNG.normal(size=MASKS.shape).astype("float32")

    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))

    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    assert _value(restored, MASKS, logits) == pytest.approx(_value(loss, MASKS, logits))


def test_make_loss_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown loss 'iou'"):
        make_loss("iou")
    with pytest.raises(ValueError, match="gamma"):
        make_loss("dice", gamma=2.0)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_every_loss_trains_a_mixed_precision_model_under_xla(precision):
    """One compiled step per loss on half-precision logits (the plan's GPU turbo, run here)."""
    import keras

    from fisuras.hardware.apply import precision_policy

    rng = np.random.default_rng(3)
    images = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    masks = (rng.uniform(size=(4, 8, 8, 1)) > 0.8).astype("float32")
    for name in LOSSES:
        with precision_policy(precision):
            inputs = keras.Input((8, 8, 3))
            hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
            logits = keras.layers.Conv2D(1, 1)(hidden)  # half-precision logits reach the loss
            model = keras.Model(inputs, logits)
        model.compile(optimizer="adam", loss=make_loss(name), jit_compile=True)
        loss = model.fit(images, masks, batch_size=2, epochs=1, verbose=0).history["loss"]
        assert np.isfinite(loss).all(), name
