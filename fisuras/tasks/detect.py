"""Patch classification: cracked or not, per 224 px patch (SDNET2018-style folders)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fisuras.config import Settings
from fisuras.models.names import LIGHT_BACKBONES
from fisuras.tasks.base import Phase, Task, TaskSpec


def weights_for(backbone: str, weights: str) -> str:
    """Light CPU models have no pretrained weights: the default "imagenet" means "none" there."""
    return "none" if backbone in LIGHT_BACKBONES and weights == "imagenet" else weights


class DetectTask(Task):
    name = "detect"
    noun = "detection"
    threshold_source = "validation split (max F1)"

    def phases(self, settings: Settings) -> list[Phase]:
        """8 frozen + 22 fine-tune epochs by default; one phase for a model with no backbone.

        The fine-tune rate is low to protect the pretrained features.
        """
        detect = settings.detect
        if detect.backbone in LIGHT_BACKBONES or settings.weights == "none":
            # No pretrained features: freezing random ones would only waste epochs.
            return [Phase("train", detect.epochs, True, detect.learning_rate)]
        return [
            Phase("frozen", detect.frozen_phase_epochs, False, detect.learning_rate),
            Phase("fine_tune", detect.fine_tune_epochs, True, detect.fine_tune_learning_rate),
        ]

    def spec(self, settings: Settings) -> TaskSpec:
        from fisuras import models
        from fisuras.models.metrics import MONITOR, training_metrics

        detect = settings.detect

        def build():
            return models.build_classifier(
                detect.backbone, image_size=detect.image_size,
                weights=weights_for(detect.backbone, settings.weights), dropout=detect.dropout)

        return TaskSpec(
            task=self.name, build_model=build, make_loss=lambda: models.make_loss("bce"),
            make_metrics=lambda: training_metrics(self.name), phases=self.phases(settings),
            monitor=MONITOR[self.name], set_backbone_trainable=models.set_backbone_trainable)

    def class_weight(self, manifest) -> dict[int, float] | None:
        return manifest.class_weights("train")  # SDNET2018 is 15% cracked

    def choose_threshold(self, model, samples, settings: Settings) -> float:
        """The F1-maximising probability on ``samples``."""
        from fisuras.evaluate.classification import best_f1_threshold
        from fisuras.evaluate.run import predict_detection

        labels, scores, _ = predict_detection(model, samples, settings.detect.image_size)
        if labels.min() == labels.max():  # one class only: F1 cannot choose, keep 0.5
            return 0.5
        return float(best_f1_threshold(labels, scores))

    def evaluate(self, model, card, samples, settings: Settings, *,
                 plots_dir: Path | None = None) -> dict[str, Any]:
        from fisuras.evaluate.run import evaluate_detection

        return evaluate_detection(model, card, samples, plots_dir=plots_dir)
