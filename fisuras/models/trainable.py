"""Freezing and unfreezing the pretrained backbone for two-phase transfer learning.

Typical use (Keras transfer-learning guide): train the new head with the backbone frozen, then
unfreeze (all, or the top layers) and fine-tune with a small learning rate. Recompile after each
change: Keras collects the trainable variables when the train function is built.

Example:
    >>> model = build_classifier("mobilenet_v2", image_size=96, weights=...)  # doctest: +SKIP
    >>> set_backbone_trainable(model, False)                  # phase 1: head only
    >>> set_backbone_trainable(model, True, fine_tune_from=-30)  # phase 2: last 30 layers
"""

from __future__ import annotations

import keras

from fisuras.models.backbones import freeze_batch_norm

BACKBONE_NAME = "backbone"


def backbone_of(model: keras.Model) -> keras.Model | None:
    """The nested sub-model named "backbone", or ``None`` (small_cnn, unet_light)."""
    try:
        layer = model.get_layer(BACKBONE_NAME)
    except ValueError:
        return None
    return layer if isinstance(layer, keras.Model) else None


def backbone_is_pretrained(model: keras.Model) -> bool:
    """True when the builder loaded weights into the backbone (ImageNet or a file).

    The builders call a pretrained backbone with ``training=False`` and a random one without it;
    that call is part of the saved graph, so the answer survives saving, reloading and resuming.
    """
    for layer in model.get_config()["layers"]:
        if layer.get("name") == BACKBONE_NAME:
            nodes = layer.get("inbound_nodes", [])
            return any(node.get("kwargs", {}).get("training") is False for node in nodes)
    return False


def set_backbone_trainable(
    model: keras.Model, trainable: bool, *, fine_tune_from: int | None = None
) -> None:
    """Freeze or unfreeze the backbone of ``model``; a pretrained backbone's BatchNorm stays frozen.

    Args:
        model: a model from ``build_classifier`` / ``build_segmenter``.
        trainable: ``False`` freezes the whole backbone; ``True`` unfreezes it.
        fine_tune_from: with ``trainable=True``, only backbone layers from this index on are
            unfrozen (a Python index into ``backbone.layers``: ``-30`` means the last 30 layers).

    BatchNorm of a pretrained backbone stays frozen (inference mode, ImageNet statistics) because
    batches that fit a 4 GB GPU are small and crack labels are noisy: re-estimated batch
    statistics would be noise and would destroy the pretrained features. A randomly initialised
    backbone (``weights="none"``) has no statistics worth keeping, and frozen initial statistics
    (mean 0, variance 1) pass almost no signal through a deep network, so its BatchNorm trains.

    A model without a backbone (small_cnn, unet_light) is trained whole: ``trainable=True`` is a
    no-op for it, ``trainable=False`` raises ``ValueError``. Recompile after calling this.
    """
    backbone = backbone_of(model)
    if backbone is None:
        if trainable and fine_tune_from is None:
            return
        raise ValueError(
            f"model {model.name!r} has no pretrained backbone to freeze (small_cnn / unet_light "
            "are trained whole); check backbone_of(model) first."
        )
    count = len(backbone.layers)
    if fine_tune_from is not None:
        if not trainable:
            raise ValueError("fine_tune_from only makes sense with trainable=True.")
        if not -count <= fine_tune_from < count:
            raise ValueError(f"fine_tune_from={fine_tune_from} is outside the backbone's "
                             f"{count} layers.")
    backbone.trainable = trainable
    # Set every layer explicitly: with the TensorFlow backend, Keras skips the propagation when
    # the flag already has the new value (``backbone.trainable = True`` on an unfrozen backbone
    # leaves earlier-frozen layers frozen).
    first = 0 if fine_tune_from is None else fine_tune_from % count
    for index, layer in enumerate(backbone.layers):
        layer.trainable = trainable and index >= first
    if backbone_is_pretrained(model):
        freeze_batch_norm(backbone)
