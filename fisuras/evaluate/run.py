"""Evaluate a model on a split or a dataset: predictions from TF, figures from the pure metrics.

``evaluate_detection`` and ``evaluate_segmentation`` score samples at a model card's threshold
(the tasks' evaluators, ``fisuras.tasks``; training's ``fisuras.train.finish`` uses them too);
``fisuras.train.finish.evaluate_run`` re-evaluates a saved run with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fisuras.evaluate import plots
from fisuras.evaluate.classification import (
    classification_metrics,
    metrics_by_group,
)
from fisuras.evaluate.overlay import error_overlay
from fisuras.evaluate.segmentation import SegmentationEvaluator
from fisuras.models.card import ModelCard

MAX_OVERLAYS = 8


def evaluate_detection(model, card: ModelCard, samples, *,
                       plots_dir: Path | None = None) -> dict[str, Any]:
    """Detection figures per surface at the card's threshold (and plots when ``plots_dir``)."""
    labels, scores, images = predict_detection(
        model, samples, card.image_size, keep_images=plots_dir is not None)
    surfaces = [s.surface or s.group or "all" for s in samples]
    result = metrics_by_group(labels, scores, surfaces, threshold=card.threshold)
    if plots_dir is not None:
        overall = classification_metrics(labels, scores, card.threshold)
        plots.plot_confusion(overall["confusion"], Path(plots_dir) / "confusion.png")
        plots.plot_roc_pr(labels, scores, Path(plots_dir) / "roc_pr.png",
                          threshold=card.threshold)
        plots.plot_prediction_grid(images, labels, scores, card.threshold,
                                   Path(plots_dir) / "predictions.png")
    return result


def evaluate_segmentation(model, card: ModelCard, samples, tolerance_px: int, *,
                          plots_dir: Path | None = None) -> dict[str, Any]:
    """Segmentation figures per set at the card's threshold (and a few error overlays)."""
    evaluator = SegmentationEvaluator(tolerance_px=tolerance_px, fixed_threshold=card.threshold)
    for index, (sample, prob, true) in enumerate(
            predict_segmentation(model, samples, card.image_size)):
        evaluator.add(prob, true, group=sample.group or "all", name=Path(sample.image).stem)
        if plots_dir is not None and index < MAX_OVERLAYS:
            from fisuras.data.images import read_rgb
            from fisuras.files import write_png

            overlay = error_overlay(read_rgb(sample.image), prob >= card.threshold, true)
            target = Path(plots_dir) / "overlays" / f"{index:03d}_{Path(sample.image).stem}.png"
            write_png(target, overlay)
    return evaluator.result()


def predict_detection(
    model, samples, image_size: int, *, keep_images: bool = False, batch_size: int = 32
):
    """Labels, crack probabilities and (optionally, a few) images for ``samples``."""
    import tensorflow as tf

    from fisuras.data import make_dataset

    dataset = make_dataset(
        samples,
        task="detect",
        image_size=image_size,
        batch_size=batch_size,
        training=False,
        augment=False,
        cache="none",
    )
    scores, labels, images = [], [], []
    for batch_images, batch_labels in dataset:
        logits = model(batch_images, training=False)
        scores.append(tf.sigmoid(tf.cast(logits, tf.float32)).numpy().reshape(-1))
        labels.append(batch_labels.numpy().reshape(-1))
        if keep_images and sum(len(i) for i in images) < 32:
            images.append(batch_images.numpy())
    image_array = np.concatenate(images) if images else None
    return np.concatenate(labels).astype(int), np.concatenate(scores), image_array


def predict_segmentation(model, samples, tile: int):
    """Yield ``(sample, probability map, true mask)`` at each image's full resolution, tiled on
    prediction's grid (:func:`fisuras.data.tiles.segment_grid`): a threshold chosen on these maps
    is chosen under the tiling it will be applied with."""
    import tensorflow as tf

    from fisuras.data.images import read_mask, read_rgb
    from fisuras.data.tiles import TILE_ALIGN, TILE_OVERLAP
    from fisuras.infer.tiling import predict_tiled

    def predict_batch(batch: np.ndarray) -> np.ndarray:
        logits = model(tf.convert_to_tensor(batch, tf.float32), training=False)
        return tf.cast(logits, tf.float32).numpy()

    for sample in samples:
        image = read_rgb(sample.image)
        prob = predict_tiled(predict_batch, image, tile=tile, overlap=TILE_OVERLAP, batch_size=8,
                             align=TILE_ALIGN)  # prediction's grid: the threshold's too
        yield sample, prob, read_mask(sample.mask)
