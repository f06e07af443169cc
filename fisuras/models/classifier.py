"""Crack / no-crack patch classifier: a backbone, global pooling and one logit.

Example:
    >>> model = build_classifier("small_cnn", image_size=64, weights="none")
    >>> model.output_shape
    (None, 1)
"""

from __future__ import annotations

import os

import keras
from keras import layers

from fisuras.models.backbones import choose_encoder, finish_weights, pretrained_encoder
from fisuras.models.layers import conv_block
from fisuras.models.names import SMALL_CNN

SMALL_CNN_FILTERS = (16, 32, 64, 128)


def build_classifier(
    backbone: str = "mobilenet_v2",
    *,
    image_size: int = 224,
    weights: str | os.PathLike | None = "imagenet",
    dropout: float = 0.2,
) -> keras.Model:
    """Binary crack classifier: (B, S, S, 3) images in 0..255 -> (B, 1) float32 logits.

    Args:
        backbone: one of ``BACKBONES`` (pretrained keras.applications model, nested as the
            sub-model "backbone") or ``"small_cnn"`` (a few conv blocks, for CPU runs).
        image_size: side ``S`` of the square input, at least 32.
        weights: ``"imagenet"``, ``"none"`` or a local weights file
            (see ``fisuras.models.weights``).
        dropout: dropout rate before the final Dense.

    The backbone's own input normalisation is inside the model, and the logit is float32 even
    under a mixed-precision policy. With pretrained weights the backbone's BatchNorm is frozen.
    """
    spec, choice = choose_encoder(backbone, weights, plain=SMALL_CNN)
    _check_size(image_size)
    images = keras.Input((image_size, image_size, 3), name="image")
    if spec is None:
        application, features = None, _small_cnn_features(images)
    else:
        application, features = pretrained_encoder(backbone, images, choice)
    x = layers.GlobalAveragePooling2D(name="pool")(features)
    x = layers.Dropout(dropout, name="dropout")(x)
    logit = layers.Dense(1, dtype="float32", name="logit")(x)
    model = keras.Model(images, logit, name=f"classifier_{backbone}")
    finish_weights(model, application, choice)
    return model


def _small_cnn_features(images):
    """Rescale to 0..1, then conv blocks each halving the resolution."""
    x = layers.Rescaling(1 / 255, name="preprocess")(images)
    for level, filters in enumerate(SMALL_CNN_FILTERS, start=1):
        x = conv_block(x, filters, f"block{level}")
        x = layers.MaxPooling2D(name=f"block{level}_pool")(x)
    return x


def _check_size(image_size: int) -> None:
    if not isinstance(image_size, int) or image_size < 32:
        raise ValueError(f"image_size must be an integer of at least 32, got {image_size!r}.")
