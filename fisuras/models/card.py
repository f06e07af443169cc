"""The model card: what a saved fisuras model is, stored beside it as ``model_card.json``.

Keras saves the network; the card records what the network alone cannot tell: the task, the
input size it was trained at, the decision threshold chosen on the validation split, and where it
came from. Inference and export read it to refuse a wrong model with a clear message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from fisuras.data.dataset import TaskName
from fisuras.errors import FisurasError
from fisuras.files import write_json

CARD_NAME = "model_card.json"


class NotAFisurasModelError(FisurasError, ValueError):
    """Raised when a path does not hold a fisuras model (no card, or a card of another kind)."""


@dataclass
class ModelCard:
    """Metadata saved next to ``model.keras``.

    Example:
        >>> card = ModelCard(task="detect", backbone="mobilenet_v2", image_size=224)
        >>> card.threshold
        0.5
    """

    task: TaskName
    backbone: str
    image_size: int
    threshold: float = 0.5
    class_names: tuple[str, ...] = ("uncracked", "cracked")
    weights: str = "none"
    fisuras_version: str = ""
    extra: dict = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        """Write the card atomically into ``folder`` and return its path."""
        path = Path(folder) / CARD_NAME
        return write_json(path, self)

    @classmethod
    def load(cls, folder: str | Path) -> ModelCard:
        """Read the card in ``folder``; raise :class:`NotAFisurasModelError` when missing or bad."""
        path = Path(folder) / CARD_NAME
        if not path.is_file():
            raise NotAFisurasModelError(
                f"{folder}: no {CARD_NAME} found, so this is not a fisuras model folder "
                "(expected the run folder written by `fisuras train`, or its model.keras)."
            )
        try:
            data = json.loads(path.read_text())
            data["class_names"] = tuple(data.get("class_names", ("uncracked", "cracked")))
            card = cls(**data)
        except (json.JSONDecodeError, TypeError) as error:
            raise NotAFisurasModelError(f"{path}: unreadable model card ({error}).") from error
        if card.task not in ("detect", "segment"):
            raise NotAFisurasModelError(f"{path}: unknown task {card.task!r} in model card.")
        return card
