"""The two tasks as the engine sees them: which model, loss, metrics and phases.

Only wiring lives here: models, losses and metrics come from ``fisuras.models``.
"""

from __future__ import annotations

from fisuras.config import Settings
from fisuras.train.engine import Phase, TaskSpec

LIGHT_BACKBONES = {"small_cnn", "unet_light"}  # no pretrained backbone to freeze


def detection_phases(settings: Settings) -> list[Phase]:
    """8 frozen + 22 fine-tune epochs by default; one phase for a model with no backbone.

    The fine-tune rate is low to protect the pretrained features.
    """
    if settings.backbone_detect in LIGHT_BACKBONES or settings.weights == "none":
        # No pretrained features: freezing random ones would only waste epochs.
        return [Phase("train", settings.epochs_detect, True, settings.learning_rate)]
    return [
        Phase("frozen", settings.frozen_phase_epochs_detect, False, settings.learning_rate),
        Phase("fine_tune", settings.fine_tune_epochs_detect, True,
              settings.fine_tune_learning_rate),
    ]


def segmentation_phases(settings: Settings) -> list[Phase]:
    """An optional frozen-encoder warm-up, then the whole U-Net at the base learning rate."""
    pretrained = settings.backbone_segment not in LIGHT_BACKBONES and settings.weights != "none"
    warmup = min(settings.frozen_epochs_segment, settings.epochs_segment) if pretrained else 0
    phases = [Phase("warmup", warmup, False, settings.learning_rate)] if warmup else []
    phases.append(Phase("train", settings.epochs_segment - warmup, True, settings.learning_rate))
    return phases


def weights_for(backbone: str, weights: str) -> str:
    """Light CPU models have no pretrained weights: the default "imagenet" means "none" there."""
    return "none" if backbone in LIGHT_BACKBONES and weights == "imagenet" else weights


def task_spec(task: str, settings: Settings) -> TaskSpec:
    """The :class:`TaskSpec` for ``"detect"`` or ``"segment"``."""
    from fisuras import models
    from fisuras.models.metrics import MONITOR, training_metrics

    if task == "detect":
        def build():
            return models.build_classifier(
                settings.backbone_detect, image_size=settings.image_size_detect,
                weights=weights_for(settings.backbone_detect, settings.weights),
                dropout=settings.dropout)
        return TaskSpec(
            task="detect", build_model=build, make_loss=lambda: models.make_loss("bce"),
            make_metrics=lambda: training_metrics("detect"), phases=detection_phases(settings),
            monitor=MONITOR["detect"], set_backbone_trainable=models.set_backbone_trainable)
    if task == "segment":
        def build():
            return models.build_segmenter(
                settings.backbone_segment, image_size=settings.image_size_segment,
                weights=weights_for(settings.backbone_segment, settings.weights))
        return TaskSpec(
            task="segment", build_model=build,
            make_loss=lambda: models.make_loss(settings.loss_segment),
            make_metrics=lambda: training_metrics("segment"),
            phases=segmentation_phases(settings), monitor=MONITOR["segment"],
            set_backbone_trainable=models.set_backbone_trainable,
            lr_schedule=settings.lr_schedule_segment)
    raise ValueError(f"unknown task {task!r}; allowed: 'detect', 'segment'")
