"""Models: crack classifiers, crack-segmentation U-Nets and their losses.

Importing this package is cheap: the TensorFlow-backed parts are loaded on first use.

Example:
    >>> from fisuras.models import build_classifier, make_loss
    >>> model = build_classifier("small_cnn", image_size=64, weights="none")  # doctest: +SKIP
    >>> model.compile("adam", loss=make_loss("bce"))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from fisuras.models.backbones import BACKBONES
from fisuras.models.weights import WeightsFileError, WeightsUnavailableError

if TYPE_CHECKING:
    from fisuras.models.classifier import build_classifier
    from fisuras.models.losses import LOSSES, make_loss
    from fisuras.models.saving import load_keras_model
    from fisuras.models.segmenter import build_segmenter
    from fisuras.models.trainable import backbone_of, set_backbone_trainable

_LAZY = {
    "build_classifier": "fisuras.models.classifier",
    "build_segmenter": "fisuras.models.segmenter",
    "backbone_of": "fisuras.models.trainable",
    "set_backbone_trainable": "fisuras.models.trainable",
    "make_loss": "fisuras.models.losses",
    "LOSSES": "fisuras.models.losses",
    "load_keras_model": "fisuras.models.saving",
}

__all__ = [
    "BACKBONES",
    "LOSSES",
    "WeightsFileError",
    "WeightsUnavailableError",
    "backbone_of",
    "build_classifier",
    "build_segmenter",
    "load_keras_model",
    "make_loss",
    "set_backbone_trainable",
]


def __getattr__(name: str):
    """Import the TensorFlow-backed modules only when one of their names is used (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fisuras.models' has no attribute {name!r}")
