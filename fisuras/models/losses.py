"""Losses for crack detection and segmentation. All take LOGITS (the models output no sigmoid).

Every loss casts ``y_true`` and ``y_pred`` to float32 before anything else, so float16 logits from
a mixed-precision model cannot overflow, and returns one value per sample (image or patch), which
Keras then averages over the batch (``sample_weight`` weighs whole samples).

Names for :func:`make_loss`:

* ``"bce"`` (detection default): binary cross-entropy, ``keras.losses.binary_crossentropy``.
* ``"focal"``: binary focal cross-entropy (``keras.losses.binary_focal_crossentropy``);
  ``gamma`` down-weights easy samples, optional ``alpha`` weighs positives (0.75 favours rare
  cracks; ``None`` = no class weighting).
* ``"dice"``, ``"tversky"``: soft overlap losses computed per image, then averaged.
* ``"bce_dice"`` (segmentation default): per-pixel BCE (stable gradients) + Dice (insensitive to
  the 1-15 % crack-pixel imbalance).

Why not keras.losses.Dice / Tversky: they take probabilities, reduce over the whole batch by
default, have no smoothing in the numerator (an image without cracks predicted perfectly gets the
worst loss, 1), and Keras 3.15's ``tversky`` applies ``alpha`` to false negatives although its
documentation says false positives. Ours follow Salehi et al. 2017: alpha weighs false positives.
"""

from __future__ import annotations

import inspect

import keras
from keras import ops

from fisuras.models.names import LOSSES


class _LogitLoss(keras.losses.Loss):
    """Base class: float32 cast, label rank alignment, one loss value per sample."""

    def __init__(self, name: str, reduction: str = "sum_over_batch_size", dtype=None):
        # dtype is accepted for Keras' from_config but always float32: that is the point.
        super().__init__(name=name, reduction=reduction, dtype="float32")

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        labels = ops.cast(y_true, "float32")
        if len(labels.shape) == len(logits.shape) - 1:  # (B,) labels for (B, 1) logits
            labels = ops.expand_dims(labels, -1)
        return self.per_sample(labels, logits)

    def per_sample(self, labels, logits):
        raise NotImplementedError


def _mean_per_sample(values):
    """Average over every axis but the batch axis."""
    axes = tuple(range(1, len(values.shape)))
    return ops.mean(values, axis=axes) if axes else values


def soft_tversky_loss(labels, logits, alpha: float, beta: float, smooth: float):
    """Per-sample ``1 - (TP + s) / (TP + alpha*FP + beta*FN + s)`` on sigmoid probabilities.

    With ``alpha = beta = 0.5`` it is the soft Dice loss
    ``1 - (2TP + 2s) / (sum y + sum p + 2s)``.
    The smooth term ``s`` in both numerator and denominator makes an image with no crack and no
    predicted crack score 0 (perfect), not 1.
    """
    probs = ops.sigmoid(logits)
    axes = tuple(range(1, len(probs.shape)))
    true_pos = ops.sum(labels * probs, axis=axes)
    false_pos = ops.sum((1.0 - labels) * probs, axis=axes)
    false_neg = ops.sum(labels * (1.0 - probs), axis=axes)
    index = (true_pos + smooth) / (true_pos + alpha * false_pos + beta * false_neg + smooth)
    return 1.0 - index


@keras.saving.register_keras_serializable(package="fisuras")
class BinaryCrossentropyLoss(_LogitLoss):
    """Binary cross-entropy on logits (numerically stable), averaged per sample."""

    def __init__(self, name: str = "bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def per_sample(self, labels, logits):
        return _mean_per_sample(
            keras.losses.binary_crossentropy(labels, logits, from_logits=True)
        )


@keras.saving.register_keras_serializable(package="fisuras")
class FocalLoss(_LogitLoss):
    """Binary focal cross-entropy on logits (Lin et al. 2017), averaged per sample."""

    def __init__(self, alpha: float | None = None, gamma: float = 2.0, name: str = "focal",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = alpha
        self.gamma = gamma

    def per_sample(self, labels, logits):
        focal = keras.losses.binary_focal_crossentropy(
            labels,
            logits,
            apply_class_balancing=self.alpha is not None,
            alpha=0.25 if self.alpha is None else self.alpha,
            gamma=self.gamma,
            from_logits=True,
        )
        return _mean_per_sample(focal)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="fisuras")
class TverskyLoss(_LogitLoss):
    """Soft Tversky loss per image; ``alpha`` weighs false positives, ``beta`` false negatives.

    ``beta > alpha`` (e.g. 0.3 / 0.7) trades precision for recall of thin cracks.
    """

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1.0,
                 name: str = "tversky", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = alpha
        self.beta = beta
        self.smooth = smooth

    def per_sample(self, labels, logits):
        return soft_tversky_loss(labels, logits, self.alpha, self.beta, self.smooth)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta,
                "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="fisuras")
class DiceLoss(_LogitLoss):
    """Soft Dice loss per image (Tversky with alpha = beta = 0.5)."""

    def __init__(self, smooth: float = 1.0, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = smooth

    def per_sample(self, labels, logits):
        return soft_tversky_loss(labels, logits, 0.5, 0.5, self.smooth)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="fisuras")
class BCEDiceLoss(_LogitLoss):
    """``bce_weight * BCE + dice_weight * Dice`` per image: the segmentation default."""

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0,
                 name: str = "bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.bce_weight = bce_weight
        self.dice_weight = dice_weight
        self.smooth = smooth

    def per_sample(self, labels, logits):
        bce = _mean_per_sample(keras.losses.binary_crossentropy(labels, logits, from_logits=True))
        dice = soft_tversky_loss(labels, logits, 0.5, 0.5, self.smooth)
        return self.bce_weight * bce + self.dice_weight * dice

    def get_config(self):
        return {**super().get_config(), "bce_weight": self.bce_weight,
                "dice_weight": self.dice_weight, "smooth": self.smooth}


_CLASSES = {
    "bce": BinaryCrossentropyLoss,
    "bce_dice": BCEDiceLoss,
    "dice": DiceLoss,
    "focal": FocalLoss,
    "tversky": TverskyLoss,
}


def make_loss(name: str = "bce", **kwargs) -> keras.losses.Loss:
    """The loss called ``name`` (one of ``LOSSES``), configured with ``kwargs``.

    Example:
        >>> make_loss("focal", gamma=2.0, alpha=0.75).get_config()["alpha"]
        0.75
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}.")
    cls = _CLASSES[name]
    try:
        return cls(**kwargs)
    except TypeError as error:
        accepted = [p for p in inspect.signature(cls.__init__).parameters
                    if p not in ("self", "kwargs", "name")]
        raise ValueError(
            f"loss {name!r} does not accept {sorted(kwargs)}; its options are {accepted}."
        ) from error
