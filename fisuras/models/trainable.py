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


def set_backbone_trainable(
    model: keras.Model, trainable: bool, *, fine_tune_from: int | None = None
) -> None:
    """Freeze or unfreeze the backbone of ``model``; BatchNorm layers always stay frozen.

    Args:
        model: a model from ``build_classifier`` / ``build_segmenter`` with a pretrained backbone.
        trainable: ``False`` freezes the whole backbone; ``True`` unfreezes it.
        fine_tune_from: with ``trainable=True``, only backbone layers from this index on are
            unfrozen (a Python index into ``backbone.layers``: ``-30`` means the last 30 layers).

    BatchNorm stays frozen (inference mode, ImageNet statistics) because batches that fit a 4 GB
    GPU are small and crack labels are noisy: re-estimated batch statistics would be noise and
    would destroy the pretrained features. Raises ``ValueError`` for a model without a backbone.
    """
    backbone = backbone_of(model)
    if backbone is None:
        raise ValueError(
            f"model {model.name!r} has no pretrained backbone (small_cnn / unet_light are "
            "trained whole); check backbone_of(model) before freezing."
        )
    if fine_tune_from is not None:
        count = len(backbone.layers)
        if not trainable:
            raise ValueError("fine_tune_from only makes sense with trainable=True.")
        if not -count <= fine_tune_from < count:
            raise ValueError(
                f"fine_tune_from={fine_tune_from} is outside the backbone's {count} layers."
            )
    backbone.trainable = trainable  # Keras propagates this to every layer inside
    if trainable and fine_tune_from is not None:
        for layer in backbone.layers[:fine_tune_from]:
            layer.trainable = False
    freeze_batch_norm(backbone)
