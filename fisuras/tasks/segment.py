"""Crack segmentation: a pixel mask per photo, from a U-Net trained on random crops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fisuras.config import Settings
from fisuras.models.names import LIGHT_BACKBONES
from fisuras.tasks.base import Phase, Task, TaskSpec
from fisuras.tasks.detect import weights_for


class SegmentTask(Task):
    name = "segment"
    noun = "segmentation"
    threshold_source = "validation split (ODS, tolerance F1)"

    def training_plan(self, plan):
        return plan.for_segmentation()  # U-Net crops have their own batch and rate scale

    def phases(self, settings: Settings) -> list[Phase]:
        """An optional frozen-encoder warm-up, then the whole U-Net at the base learning rate."""
        segment = settings.segment
        pretrained = segment.backbone not in LIGHT_BACKBONES and settings.weights != "none"
        warmup = min(segment.frozen_epochs, segment.epochs) if pretrained else 0
        phases = [Phase("warmup", warmup, False, segment.learning_rate)] if warmup else []
        phases.append(Phase("train", segment.epochs - warmup, True, segment.learning_rate))
        return phases

    def spec(self, settings: Settings) -> TaskSpec:
        from fisuras import models
        from fisuras.models.metrics import MONITOR, training_metrics

        segment = settings.segment

        def build():
            return models.build_segmenter(
                segment.backbone, image_size=segment.image_size,
                weights=weights_for(segment.backbone, settings.weights))

        return TaskSpec(
            task=self.name, build_model=build,
            make_loss=lambda: models.make_loss(segment.loss),
            make_metrics=lambda: training_metrics(self.name), phases=self.phases(settings),
            monitor=MONITOR[self.name], set_backbone_trainable=models.set_backbone_trainable,
            lr_schedule=segment.lr_schedule)

    def input_options(self, settings: Settings) -> dict[str, Any]:
        segment = settings.segment
        return dict(crops_by_area=segment.crops_per_photo == "area",
                    min_steps=segment.min_steps_per_epoch, scale_jitter=segment.scale_jitter)

    def choose_threshold(self, model, samples, settings: Settings) -> float:
        """The ODS threshold (best tolerance F1 over the whole split) on ``samples``."""
        from fisuras.evaluate.run import predict_segmentation
        from fisuras.evaluate.segmentation import SegmentationEvaluator

        evaluator = SegmentationEvaluator(tolerance_px=settings.segment.tolerance_px)
        for sample, prob, true in predict_segmentation(model, samples,
                                                       settings.segment.image_size):
            evaluator.add(prob, true, group="val", name=Path(sample.image).stem)
        return float(evaluator.result()["val"]["ods_threshold"])

    def evaluate(self, model, card, samples, settings: Settings, *,
                 plots_dir: Path | None = None) -> dict[str, Any]:
        from fisuras.evaluate.run import evaluate_segmentation

        return evaluate_segmentation(model, card, samples, settings.segment.tolerance_px,
                                     plots_dir=plots_dir)

    def floor(self, samples, settings: Settings) -> dict[str, Any] | None:
        """The black top-hat filter on the same photos: did learning pay?"""
        from fisuras.evaluate.floor import floor_entry

        return floor_entry(samples, settings)

    def describe_epoch(self, settings: Settings) -> str | None:
        from fisuras.data.cache_plan import describe_segmentation_epoch

        segment = settings.segment
        return describe_segmentation_epoch(segment.crops_per_photo, segment.min_steps_per_epoch,
                                           segment.image_size, segment.scale_jitter)
