"""Load a saved fisuras model safely, and refuse anything else with a message that says why.

A saved model is a run folder holding ``model.keras`` and ``model_card.json``. Checks run
cheapest first, so a wrong file fails before Keras reads a byte of it: the path exists, the card
is there and valid, the task is the one asked for, the model file is a ``.keras`` zip archive;
then Keras loads it in *safe mode* (no Lambda layers or other arbitrary code) and the output shape
is checked against the task.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fisuras.errors import FisurasError
from fisuras.models.card import ModelCard, NotAFisurasModelError

MODEL_FILE = "model.keras"
TASK_NAMES = {"detect": "detection (patch classifier)", "segment": "segmentation"}
TASK_FLAGS = {"detect": "--detector", "segment": "--segmenter"}

__all__ = ["LoadedModel", "NotAFisurasModelError", "WrongTaskError", "choose_models", "load_model",
           "locate_model"]


class WrongTaskError(FisurasError, ValueError):
    """A fisuras model of the other task was given (a segmenter where a detector is needed...)."""


@dataclass
class LoadedModel:
    """A Keras model with the card that describes it and the file it came from."""

    model: object  # keras.Model (kept untyped so this module imports without Keras)
    card: ModelCard
    path: Path  # the model.keras file

    @property
    def image_size(self) -> int:
        return self.card.image_size


def locate_model(path: str | Path) -> tuple[Path, Path]:
    """``(folder, model file)`` for a run folder or its ``model.keras``; no loading.

    Raises :class:`NotAFisurasModelError` naming ``path`` when it cannot be a fisuras model.
    """
    path = Path(path)
    if not path.exists():
        from fisuras.shipped import RECIPES, shipped_model_folder

        if str(path) in RECIPES:  # a shipped model's name: its installed folder
            return locate_model(shipped_model_folder(str(path)))
        raise NotAFisurasModelError(f"{path}: no such file or folder (nor a shipped model: "
                                    f"{', '.join(RECIPES)}).")
    if path.is_dir():
        return path, path / MODEL_FILE
    if path.suffix != ".keras":
        raise NotAFisurasModelError(
            f"{path}: not a fisuras model; give the run folder written by `fisuras train` "
            f"(holding {MODEL_FILE} and model_card.json) or its {MODEL_FILE}."
        )
    return path.parent, path


def check_task(card: ModelCard, expect_task: str | None, path: Path) -> None:
    """Raise :class:`WrongTaskError` when ``card`` is not of ``expect_task`` (None: any task)."""
    if expect_task is None or card.task == expect_task:
        return
    if expect_task not in TASK_NAMES:
        raise ValueError(f"expect_task must be one of {sorted(TASK_NAMES)}, got {expect_task!r}")
    raise WrongTaskError(
        f"{path} is a {TASK_NAMES[card.task]} model; `fisuras predict {TASK_FLAGS[expect_task]}` "
        f"needs a {TASK_NAMES[expect_task]} model."
    )


def load_model(path: str | Path, *, expect_task: str | None = None) -> LoadedModel:
    """Load a fisuras run folder (or its ``model.keras``) with Keras safe mode, uncompiled.

    Example:
        >>> detector = load_model("runs/detect-001", expect_task="detect")  # doctest: +SKIP
        >>> detector.card.threshold  # doctest: +SKIP
        0.42
    """
    folder, model_file = locate_model(path)
    card = ModelCard.load(folder)
    check_task(card, expect_task, Path(path))
    if not model_file.is_file():
        raise NotAFisurasModelError(f"{folder}: has a model card but no {MODEL_FILE}.")
    if not zipfile.is_zipfile(model_file):
        raise NotAFisurasModelError(
            f"{model_file}: not a Keras .keras archive (the file is not a zip); it may be "
            "truncated or not a model at all."
        )

    from fisuras.models.saving import load_keras_model  # safe mode, fisuras layers

    try:
        model = load_keras_model(model_file, compile=False)
    except Exception as error:  # Keras raises many types for a broken or foreign archive
        raise NotAFisurasModelError(
            f"{model_file}: Keras could not load it in safe mode, which fisuras always uses "
            f"(models holding Python code are refused). {type(error).__name__}: {error}"
        ) from error
    check_network_matches_card(model, card, model_file)
    return LoadedModel(model=model, card=card, path=model_file)


def check_network_matches_card(model, card: ModelCard, model_file: Path) -> None:
    """The network must take the card's image size and produce what the card's task promises:
    (B, 1) or (B, S, S, 1) logits."""
    input_shape = model.input_shape
    sides = set(input_shape[1:3]) - {None} if isinstance(input_shape, tuple) else {"several"}
    if len(input_shape) != 4 or input_shape[-1] != 3 or sides - {card.image_size}:
        raise NotAFisurasModelError(
            f"{model_file}: model card says {card.image_size} px RGB images, but the network "
            f"takes {input_shape}."
        )
    shape = tuple(model.output_shape) if not isinstance(model.output_shape, list) else None
    expected = "(batch, 1)" if card.task == "detect" else "(batch, height, width, 1)"
    rank_ok = shape is not None and len(shape) == (2 if card.task == "detect" else 4)
    if not rank_ok or shape[-1] != 1:
        raise NotAFisurasModelError(
            f"{model_file}: model card says task {card.task!r}, but the network outputs "
            f"{model.output_shape} instead of {expected}."
        )


def choose_models(model: str | Path | None = None, detector: str | Path | None = None,
                  segmenter: str | Path | None = None, *,
                  log: Callable[[str], None] | None = None) -> dict[str, LoadedModel]:
    """``{"detect": ..., "segment": ...}`` loaded for prediction, as ``fisuras predict`` picks them.

    ``model`` (a run, a ``model.keras`` or a shipped name) fills the slot its card names;
    ``detector``/``segmenter`` fill theirs; with none given, the shipped defaults
    (:data:`fisuras.shipped.DEFAULT_PREDICT_MODELS`) do, and ``log`` says which.

    Example:
        >>> models = choose_models()  # doctest: +SKIP
        >>> sorted(models)  # doctest: +SKIP
        ['segment']
    """
    from fisuras.shipped import PREDICT_ROLES, default_predict_models

    chosen: dict[str, str | Path] = {"detect": detector, "segment": segmenter}
    if not (model or detector or segmenter):
        defaults = default_predict_models()
        chosen.update(defaults)
        if log is not None and defaults:
            used = " and ".join(f"{PREDICT_ROLES[task]} {folder.name}"
                                for task, folder in defaults.items())
            log(f"no model given: using the shipped {used} (fisuras models)")
    loaded = {task: load_model(path, expect_task=task) for task, path in chosen.items() if path}
    if model:
        routed = load_model(model)  # goes where its card says, unless that slot is taken
        loaded.setdefault(routed.card.task, routed)
    return loaded
