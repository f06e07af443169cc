"""What a task is: the object that owns everything one task does differently.

The engine, the data pipeline, evaluation and the CLI ask the task (``fisuras.tasks.get_task``)
instead of testing its name. A third task (crack-type classification, say) is one module with a
:class:`Task` subclass and one line in the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import keras

    from fisuras.config import Settings
    from fisuras.hardware.plan import Plan


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs with one optimizer and one trainable setting."""

    name: str
    epochs: int
    backbone_trainable: bool
    learning_rate: float


@dataclass
class TaskSpec:
    """What a task brings to the training engine for one run's settings."""

    task: str
    build_model: Callable[[], keras.Model]
    make_loss: Callable[[], keras.losses.Loss]
    make_metrics: Callable[[], list]
    phases: list[Phase]
    monitor: str  # a validation metric to maximise, e.g. "val_auc"
    set_backbone_trainable: Callable[[keras.Model, bool], None]
    lr_schedule: str = "constant"  # or "warmup_cosine" (``LearningRateSchedule``)
    divergence_advice: str = ("Lower the learning rate (--set <task>.learning_rate=...) and "
                              "resume, or turn off mixed precision (--set "
                              "gpu.enable_mixed_precision=false), and check the data for broken "
                              "images.")


class Task:
    """One task: its settings section, model, loss, metrics, input, threshold and evaluation.

    Subclasses set the class attributes and implement the methods that raise here.
    """

    name: ClassVar[str]  # the CLI's and the settings section's name: "detect"
    noun: ClassVar[str]  # for messages: "detection"
    threshold_source: ClassVar[str]  # how the threshold is chosen on validation

    def section(self, settings: Settings) -> Any:
        """This task's settings section (``settings.detect``, ...)."""
        return getattr(settings, self.name)

    def key(self, field: str) -> str:
        """The dotted settings key of one of this task's fields: ``"detect.epochs"``."""
        return f"{self.name}.{field}"

    def image_size(self, settings: Settings) -> int:
        return self.section(settings).image_size

    def training_plan(self, plan: Plan) -> Plan:
        """The plan this task trains with (a task may have its own batch and rate scale)."""
        return plan

    def phases(self, settings: Settings) -> list[Phase]:
        raise NotImplementedError

    def spec(self, settings: Settings) -> TaskSpec:
        raise NotImplementedError

    def input_options(self, settings: Settings) -> dict[str, Any]:
        """Extra ``make_dataset`` arguments of this task's training input."""
        return {}

    def class_weight(self, manifest) -> dict[int, float] | None:
        return None

    def choose_threshold(self, model, samples, settings: Settings) -> float:
        raise NotImplementedError

    def evaluate(self, model, card, samples, settings: Settings, *,
                 plots_dir: Path | None = None) -> dict[str, Any]:
        """Figures for ``samples`` at the card's threshold (and plots when ``plots_dir``)."""
        raise NotImplementedError

    def floor(self, samples, settings: Settings) -> dict[str, Any] | None:
        """A no-learning baseline's figures on the same samples, when the task has one."""
        return None

    def describe_epoch(self, settings: Settings) -> str | None:
        """What one epoch of this task is, for ``fisuras config show``."""
        return None
