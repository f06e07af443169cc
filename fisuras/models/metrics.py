"""Keras metrics watched during training (the final figures come from ``fisuras.evaluate``).

Models output logits, so thresholds are at 0.0 (= probability 0.5) and AUCs take logits.
"""

from __future__ import annotations

import keras

MONITOR = {"detect": "val_auc", "segment": "val_dice"}


@keras.saving.register_keras_serializable(package="fisuras")
class PixelDice(keras.metrics.Metric):
    """Dice (= pixel F1) of the crack class over all pixels seen, from logits.

    Example:
        >>> import numpy as np
        >>> m = PixelDice()
        >>> m.update_state(np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), 5.0))
        >>> round(float(m.result()), 3)
        1.0
    """

    def __init__(self, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable((), initializer="zeros", name="tp")
        self.predicted = self.add_variable((), initializer="zeros", name="predicted")
        self.actual = self.add_variable((), initializer="zeros", name="actual")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        truth = ops.cast(ops.greater(ops.cast(y_true, "float32"), 0.5), "float32")
        pred = ops.cast(ops.greater(ops.cast(y_pred, "float32"), 0.0), "float32")
        self.true_positives.assign_add(ops.sum(truth * pred))
        self.predicted.assign_add(ops.sum(pred))
        self.actual.assign_add(ops.sum(truth))

    def result(self):
        ops = keras.ops
        return ops.divide_no_nan(2.0 * self.true_positives, self.predicted + self.actual)


def training_metrics(task: str) -> list[keras.metrics.Metric]:
    """Fresh metric objects for ``model.compile`` (one set per compile)."""
    if task == "detect":
        return [
            keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),
            keras.metrics.AUC(name="auc", from_logits=True),
            keras.metrics.AUC(name="pr_auc", curve="PR", from_logits=True),
            keras.metrics.Precision(name="precision", thresholds=0.0),
            keras.metrics.Recall(name="recall", thresholds=0.0),
        ]
    if task == "segment":
        return [
            PixelDice(name="dice"),
            keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.0, name="iou"),
        ]
    raise ValueError(f"unknown task {task!r}; allowed: 'detect', 'segment'")
