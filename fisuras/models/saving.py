"""Loading a saved fisuras model with its custom layers and losses registered."""

from __future__ import annotations

import os


def load_keras_model(path: str | os.PathLike, *, compile: bool = True):
    """``keras.models.load_model(path, safe_mode=True)`` after registering fisuras' custom objects.

    Use this rather than Keras directly: ``import fisuras.models`` is lazy and registers nothing,
    so Keras would not know ``fisuras>CaffePreprocess``, the fisuras losses or metrics. Returns
    the bare ``keras.Model``; :func:`fisuras.infer.loading.load_model` loads a saved run (model
    and card, checked).
    """
    import keras

    from fisuras.models import layers, losses, metrics  # noqa: F401  (importing registers them)

    return keras.models.load_model(os.fspath(path), safe_mode=True, compile=compile)
