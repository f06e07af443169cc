"""Crack segmentation U-Nets: one logit per pixel at full input resolution.

Two kinds: a pretrained keras.applications encoder with a light decoder, or ``unet_light``, a plain
4-level U-Net small enough to train on a CPU.

Example:
    >>> model = build_segmenter("unet_light", image_size=64, weights="none")
    >>> model.output_shape
    (None, 64, 64, 1)
"""

from __future__ import annotations

import math
import os

import keras
from keras import layers

from fisuras.models.backbones import choose_encoder, finish_weights, pretrained_encoder
from fisuras.models.layers import BilinearUpSampling2D, conv_block
from fisuras.models.names import UNET_LIGHT

UNET_LEVELS = 4
SIZE_MULTIPLE = 32  # the pretrained encoders downsample 5 times
# Crack pixels are 1-15% of a crack image: the output bias starts at this prior (RetinaNet's
# initialisation, Lin et al. 2017) instead of 0.5, so the first hundreds of steps are not spent
# unlearning "every pixel is half crack" (Adam moves a bias about one learning rate per step).
CRACK_PIXEL_PRIOR = 0.05


def build_segmenter(
    backbone: str = "mobilenet_v2",
    *,
    image_size: int = 256,
    weights: str | os.PathLike | None = "imagenet",
    base_filters: int = 16,
    crack_prior: float = CRACK_PIXEL_PRIOR,
) -> keras.Model:
    """Crack U-Net: (B, S, S, 3) images in 0..255 -> (B, S, S, 1) float32 logits per pixel.

    Args:
        backbone: one of ``BACKBONES`` (encoder nested as the sub-model "backbone", with skip
            connections at 1/2, 1/4, 1/8, 1/16) or ``"unet_light"`` (plain U-Net, 4 levels).
        image_size: side ``S`` of the square input, a multiple of 32.
        weights: ``"imagenet"``, ``"none"`` or a local weights file
            (see ``fisuras.models.weights``).
        base_filters: width of the finest decoder level; coarser levels double it.
        crack_prior: the untrained model's crack probability for every pixel (output bias).
    """
    spec, choice = choose_encoder(backbone, weights, plain=UNET_LIGHT)
    if not isinstance(image_size, int) or image_size <= 0 or image_size % SIZE_MULTIPLE:
        raise ValueError(
            f"image_size must be a positive multiple of {SIZE_MULTIPLE}, got {image_size!r}."
        )
    if base_filters < 1:
        raise ValueError(f"base_filters must be at least 1, got {base_filters!r}.")
    if not 0.0 < crack_prior < 1.0:
        raise ValueError(f"crack_prior must be between 0 and 1 (exclusive), got {crack_prior!r}.")
    bias = keras.initializers.Constant(math.log(crack_prior / (1.0 - crack_prior)))
    images = keras.Input((image_size, image_size, 3), name="image")
    if spec is None:
        application = None
        logits = _unet_light(images, base_filters, bias)
    else:
        application, (*skips, bottom) = pretrained_encoder(backbone, images, choice, skips=True)
        # Thin cracks (2 px) are 1 px wide at the finest encoder scale (1/2): a small
        # full-resolution branch on the raw image gives the last decoder level pixel detail.
        detail = conv_block(layers.Rescaling(1 / 255, name="detail_scale")(images),
                            base_filters, "detail", convs=1)
        # 1x1 "bridge": 1280-2048 encoder channels would make the first decoder conv the
        # heaviest layer of the model; 16*base_filters keep the decoder light.
        bottom = conv_block(bottom, 16 * base_filters, "bridge", convs=1, kernel_size=1)
        widths = [base_filters, base_filters, 2 * base_filters, 4 * base_filters, 8 * base_filters]
        logits = _decoder(bottom, [detail, *skips], widths, bias)
    model = keras.Model(images, logits, name=f"segmenter_{backbone}")
    finish_weights(model, application, choice)
    return model


def _decoder(x, skips: list, widths: list[int], bias: keras.initializers.Initializer):
    """Upsample ``x`` step by step to full size, concatenating ``skips`` on the way up.

    ``skips[level]`` and ``widths[level]`` (conv filters) belong to scale 1/2**level, finest first.
    Bilinear upsampling + conv avoids the checkerboard artefacts of transposed convolutions; the
    upsampling keeps one dtype under mixed precision + XLA (see ``BilinearUpSampling2D``).
    """
    for level in reversed(range(len(skips))):
        scale = 2**level
        x = BilinearUpSampling2D(name=f"up{scale}")(x)
        x = layers.Concatenate(name=f"concat{scale}")([x, skips[level]])
        x = conv_block(x, widths[level], f"decoder{scale}")
    # float32 logits whatever the mixed-precision policy, so losses and sigmoid stay exact.
    return layers.Conv2D(1, 1, dtype="float32", bias_initializer=bias, name="logits")(x)


def _unet_light(images, base_filters: int, bias: keras.initializers.Initializer):
    """Plain U-Net: 4 conv/pool levels down, a bottleneck, 4 upsample/concat levels up."""
    x = layers.Rescaling(1 / 255, name="preprocess")(images)
    skips = []
    for level in range(UNET_LEVELS):
        x = conv_block(x, base_filters * 2**level, f"encoder{2**level}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"down{2**level}")(x)
    x = conv_block(x, base_filters * 2**UNET_LEVELS, "bottleneck")
    return _decoder(x, skips, [base_filters * 2**level for level in range(UNET_LEVELS)], bias)
