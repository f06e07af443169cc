"""Tiny end-to-end: the CPU models train a few steps on random data through ``fit``.

SGD rather than Adam only to keep the test fast: on this CPU, Adam's first step adds ~10 s of
graph tracing.
"""

from __future__ import annotations

import numpy as np

from fisuras.models import build_classifier, build_segmenter, make_loss
from tests.models.conftest import SIZE

RNG = np.random.default_rng(4)
IMAGES = RNG.integers(0, 256, size=(8, SIZE, SIZE, 3)).astype("uint8")


def test_small_cnn_fits_a_few_steps():
    labels = RNG.integers(0, 2, size=(8,)).astype("float32")
    model = build_classifier("small_cnn", image_size=SIZE, weights="none")
    model.compile(optimizer="sgd", loss=make_loss("bce"))

    history = model.fit(IMAGES, labels, batch_size=4, epochs=3, steps_per_epoch=1, verbose=0)

    assert len(history.history["loss"]) == 3
    assert np.isfinite(history.history["loss"]).all()


def test_unet_light_fits_a_few_steps():
    masks = (RNG.uniform(size=(8, SIZE, SIZE, 1)) < 0.05).astype("uint8")
    model = build_segmenter("unet_light", image_size=SIZE, weights="none")
    model.compile(optimizer="sgd", loss=make_loss("bce_dice"))

    history = model.fit(IMAGES, masks, batch_size=4, epochs=3, steps_per_epoch=1, verbose=0)

    assert len(history.history["loss"]) == 3
    assert np.isfinite(history.history["loss"]).all()
