"""What the ``weights`` argument of the model builders means, and how a weights file is loaded.

``weights`` is one of:

* ``"imagenet"``: keras.applications downloads the official file (cached in ``~/.keras/models``).
  Offline, that fails at build time with :class:`WeightsUnavailableError`, which says how to go on.
* ``"none"`` (or ``None``): random initialisation, training from scratch.
* a shipped model's name (``crack-seg-s``, ``crack-det-s``: ``fisuras models``): its installed
  ``model.keras``, a crack-trained start for fine-tuning, offline. The run takes the shipped
  model's backbone (:func:`fisuras.tasks.adopt_shipped_weights`); the image size may differ.
* a path to a local file: either the official keras.applications ``*_notop.h5`` of the backbone,
  a backbone ``.weights.h5`` saved by fisuras, or a whole fisuras model (``.keras`` or
  ``.weights.h5``). The file is tried on the backbone first, then on the whole model.

This module does not import TensorFlow: it only calls ``load_weights`` on models it is given.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Literal

from fisuras.errors import FisurasError

WeightsChoice = Literal["imagenet", "none"] | Path

KERAS_CACHE_HINT = "~/.keras/models (or $KERAS_HOME/models)"
WEIGHTS_SUFFIXES = (".keras", ".weights.h5", ".h5", ".hdf5")


class WeightsUnavailableError(FisurasError, RuntimeError):
    """The ImageNet weights of a backbone could not be downloaded (typically: no internet)."""


class WeightsFileError(FisurasError, ValueError):
    """A local weights file is missing, of an unknown kind, or does not fit the model (ImageNet
    weights for a network trained from scratch neither)."""


def resolve_weights(weights: str | os.PathLike | None) -> WeightsChoice:
    """Turn the user's ``weights`` argument into ``"imagenet"``, ``"none"`` or an existing Path.

    Example:
        >>> resolve_weights("ImageNet"), resolve_weights(None)
        ('imagenet', 'none')
    """
    if weights is None:
        return "none"
    if isinstance(weights, str) and weights.strip().lower() in ("imagenet", "none"):
        return weights.strip().lower()  # type: ignore[return-value]
    from fisuras.shipped import RECIPES, shipped_model_folder

    if str(weights) in RECIPES and not Path(weights).exists():
        return shipped_model_folder(str(weights)) / "model.keras"  # raises if not installed
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsFileError(
            f"weights file {str(path)!r} does not exist (or is not a file). Pass an existing "
            "file, a shipped model's name (`fisuras models`), or --weights none to train from "
            "scratch, or --weights imagenet."
        )
    if not path.name.lower().endswith(WEIGHTS_SUFFIXES):
        raise WeightsFileError(
            f"weights file {str(path)!r}: unknown kind; expected a file ending in "
            f"{', '.join(WEIGHTS_SUFFIXES)}."
        )
    return path


def imagenet_unavailable_message(model_name: str, error: BaseException) -> str:
    """The message of :class:`WeightsUnavailableError`: what failed and the two ways around it."""
    url = re.search(r"https?://\S+?\.h5", str(error))
    file_name = url.group(0).rsplit("/", 1)[-1] if url else f"<{model_name}_weights>_notop.h5"
    return (
        f"Could not get the ImageNet weights for {model_name}: the download failed "
        f"({error}). This machine may be offline. Either:\n"
        f"  - train from scratch:  --weights none\n"
        f"  - use a local copy:    --weights /path/to/{file_name}\n"
        f"  - or put the official file {file_name} in the Keras cache folder {KERAS_CACHE_HINT} "
        "and retry with --weights imagenet."
    )


def is_download_failure(error: BaseException) -> bool:
    """True when ``error`` comes from keras.utils.get_file failing to fetch a URL.

    Keras raises a bare ``Exception("URL fetch failure on ...")`` from inside the handler of the
    original ``URLError``, so we look at the message and at the chained context.
    """
    return (
        isinstance(error, OSError)
        or isinstance(error.__context__, OSError)
        or "URL fetch failure" in str(error)
    )


def _first_lines(error: BaseException, count: int = 2) -> str:
    """The gist of a (often very long) Keras loading error."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:count])


def load_weights_file(path: Path, *, model, backbone=None) -> None:
    """Load ``path`` into ``backbone`` if it fits there, else into the whole ``model``.

    A ``.keras`` archive is always a whole model. A file that does not fit makes Keras raise
    (layer count or variable mismatch), so a silent partial load cannot happen; if neither fits,
    :class:`WeightsFileError` names the file and what was tried.
    """
    is_archive = path.name.lower().endswith(".keras")
    attempts = [model] if backbone is None or is_archive else [backbone, model]
    errors = []
    for target in attempts:
        try:
            with warnings.catch_warnings():
                # A failed attempt warns once per layer before raising; the error says it all.
                warnings.simplefilter("ignore")
                target.load_weights(str(path))
            return
        except (ValueError, KeyError, OSError, TypeError) as error:
            errors.append(f"into {target.name!r}: {_first_lines(error)}")
    raise WeightsFileError(
        f"weights file {str(path)!r} does not fit this model (tried "
        + "; ".join(errors)
        + "). Expected the official keras.applications *_notop.h5 of the same backbone, or a "
        "fisuras model of the same task and backbone."
    )
