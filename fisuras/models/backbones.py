"""The pretrained keras.applications backbones: how to build them, feed them and tap them.

For each backbone we record the keras.applications constructor, the input normalisation it was
trained with (put INSIDE our models, because the data pipeline feeds raw 0..255 pixels), and the
layers whose outputs the U-Net decoder uses as skip connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from fisuras.models.names import PRETRAINED_BACKBONES as BACKBONES

Preprocessing = Literal["tf", "caffe", "builtin"]


@dataclass(frozen=True)
class BackboneSpec:
    """What fisuras needs to know about one keras.applications backbone."""

    constructor: str
    """Name of the builder in ``keras.applications``."""
    preprocessing: Preprocessing
    """"tf": x/127.5 - 1; "caffe": BGR mean subtraction; "builtin": done inside the model."""
    skip_layers: tuple[str, str, str, str]
    """Layers whose outputs are at 1/2, 1/4, 1/8 and 1/16 of the input size: the last activation
    at each scale, before the next stride-2 layer (the usual choice, e.g. the TF pix2pix U-Net)."""


SPECS: dict[str, BackboneSpec] = {
    "mobilenet_v2": BackboneSpec(
        "MobileNetV2",
        "tf",
        ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
         "block_13_expand_relu"),
    ),
    "efficientnet_v2_b0": BackboneSpec(
        "EfficientNetV2B0",
        "builtin",  # include_preprocessing=True: Rescaling(1/255) + ImageNet mean/std
        ("block1a_project_activation", "block2b_add", "block4a_expand_activation",
         "block6a_expand_activation"),
    ),
    "resnet50": BackboneSpec(
        "ResNet50",
        "caffe",
        ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out"),
    ),
}


def spec_of(backbone: str, *, extra: tuple[str, ...] = ()) -> BackboneSpec | None:
    """The spec of ``backbone``, ``None`` for one of the ``extra`` plain networks, else raise."""
    if backbone in SPECS:
        return SPECS[backbone]
    if backbone in extra:
        return None
    raise ValueError(
        f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES + extra)}."
    )


def choose_encoder(backbone: str, weights, *, plain: str) -> tuple[BackboneSpec | None, Any]:
    """``(spec, weights choice)`` for a builder whose own small network is called ``plain``.

    ``spec`` is ``None`` for ``plain`` (else raise for an unknown name); the choice is
    :func:`~fisuras.models.weights.resolve_weights`' answer. The plain network is trained from
    scratch: ImageNet weights for it raise ``WeightsFileError``.
    """
    from fisuras.models.weights import WeightsFileError, resolve_weights

    spec = spec_of(backbone, extra=(plain,))
    choice = resolve_weights(weights)
    if spec is None and choice == "imagenet":
        raise WeightsFileError(
            f"{backbone} is trained from scratch and has no ImageNet weights; "
            "use --weights none (or a fisuras model file)."
        )
    return spec, choice


def pretrained_encoder(backbone: str, images, choice, *, skips: bool = False):
    """``(application, outputs)``: ``backbone``'s keras.applications model, nested in the new
    model as the sub-model "backbone" and called on ``images`` (see :func:`call_backbone`).

    ``outputs`` is the last feature map; with ``skips``, the list of the skip taps (1/2, 1/4,
    1/8, 1/16 of the input) followed by the last feature map, for a U-Net decoder.
    """
    import keras

    application = build_application(backbone, image_size=int(images.shape[1]),
                                    imagenet=choice == "imagenet")
    outputs = application.output
    if skips:
        taps = [application.get_layer(name).output for name in SPECS[backbone].skip_layers]
        outputs = [*taps, outputs]
    # A functional view over the application's layers, so it can be named "backbone".
    encoder = keras.Model(application.input, outputs, name="backbone")
    return application, call_backbone(encoder, backbone, images, pretrained=choice != "none")


def build_application(backbone: str, *, image_size: int, imagenet: bool):
    """The headless keras.applications model for ``backbone`` (ImageNet weights or random).

    Raises :class:`~fisuras.models.weights.WeightsUnavailableError` when ImageNet weights are
    asked for and the download fails (offline machine), chaining the original error.
    """
    import keras

    from fisuras.models.weights import (
        WeightsUnavailableError,
        imagenet_unavailable_message,
        is_download_failure,
    )

    spec = SPECS[backbone]
    options = {
        "include_top": False,
        "weights": "imagenet" if imagenet else None,
        "input_shape": (image_size, image_size, 3),
    }  # no "name": EfficientNetV2 looks its block layout up by name
    if spec.preprocessing == "builtin":
        options["include_preprocessing"] = True
    try:
        return getattr(keras.applications, spec.constructor)(**options)
    except Exception as error:
        if imagenet and is_download_failure(error):
            raise WeightsUnavailableError(imagenet_unavailable_message(backbone, error)) from error
        raise


def preprocessing_layer(backbone: str):
    """A serialisable layer mapping 0..255 RGB to what ``backbone`` expects (``None``: built in)."""
    from keras import layers

    from fisuras.models.layers import CaffePreprocess

    kind = SPECS[backbone].preprocessing
    if kind == "tf":
        return layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")
    if kind == "caffe":
        return CaffePreprocess(name="preprocess")
    return None


def call_backbone(encoder, backbone: str, images, *, pretrained: bool):
    """Normalise ``images`` for ``backbone`` and run ``encoder`` (the nested "backbone" model).

    A pretrained backbone is called with ``training=False`` (Keras transfer-learning guide). Note
    that in Keras 3 an outer ``fit`` still passes ``training=True`` down to nested models, so what
    really keeps BatchNorm in inference mode is ``freeze_batch_norm`` (BN with trainable=False
    always uses its moving statistics). A randomly initialised backbone is called normally: its
    BatchNorm must learn statistics, else a deep network like ResNet50 trains without normalisation.
    """
    preprocess = preprocessing_layer(backbone)
    x = preprocess(images) if preprocess is not None else images
    return encoder(x, training=False) if pretrained else encoder(x)


def all_layers(model) -> Iterator[Any]:
    """Every layer inside ``model``, nested models' layers included (depth first, each nested
    model before its own layers). The one recursive layer walk of fisuras."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def freeze_batch_norm(model) -> None:
    """Set ``trainable=False`` on every BatchNormalization layer inside ``model`` (recursively).

    Why: a frozen BN layer runs in inference mode, using the ImageNet moving statistics. With the
    small batches that fit a 4 GB GPU and noisy crack labels, batch statistics are too noisy to
    re-estimate, and updating them wrecks what the pretrained layers learned.
    """
    from keras import layers

    for layer in all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def finish_weights(model, application, weights) -> None:
    """Load a local weights file into ``application`` or ``model``; freeze BN if pretrained.

    ``weights`` is the result of :func:`~fisuras.models.weights.resolve_weights`;
    ``application`` is the keras.applications model (``None`` for the plain CPU networks).
    """
    from pathlib import Path

    from fisuras.models.weights import load_weights_file

    if isinstance(weights, Path):
        load_weights_file(weights, model=model, backbone=application)
    if application is None:
        return
    if weights != "none":
        freeze_batch_norm(application)
    else:
        faster_batch_norm_statistics(application)


FRESH_BN_MOMENTUM = 0.9


def faster_batch_norm_statistics(model) -> None:
    """BatchNorm momentum 0.9 in a randomly initialised backbone (keras.applications uses 0.999).

    Why: at 0.999 the moving statistics need thousands of steps to leave their initial values, so
    a short run from scratch validates (and later fine-tunes, when reused as weights) with
    statistics that match nothing: validation accuracy stays at chance while training learns.
    """
    from keras import layers

    for layer in all_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = FRESH_BN_MOMENTUM
