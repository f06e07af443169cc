"""A tiny task for engine tests: a 16x16 'bright or dark' problem and a model with a backbone.

It exercises the real engine (phases, checkpoints, resume, guards) in seconds, without the data
and model modules, which have their own tests.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from fisuras.config import Settings
from fisuras.hardware.facts import HardwareFacts
from fisuras.hardware.plan import make_plan
from fisuras.tasks import Phase, TaskSpec

SIZE = 16


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(1)
    backbone = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), keras.layers.Conv2D(4, 3, padding="same"),
         keras.layers.BatchNormalization(), keras.layers.ReLU()], name="backbone")
    inputs = keras.Input((SIZE, SIZE, 3))
    features = backbone(inputs, training=False)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(1, dtype="float32")(pooled)
    return keras.Model(inputs, outputs)


def set_trainable(model: keras.Model, trainable: bool) -> None:
    model.get_layer("backbone").trainable = trainable


def tiny_spec(frozen: int = 2, fine: int = 2) -> TaskSpec:
    return TaskSpec(
        task="detect", build_model=tiny_model,
        make_loss=lambda: keras.losses.BinaryCrossentropy(from_logits=True),
        make_metrics=lambda: [keras.metrics.AUC(name="auc", from_logits=True)],
        phases=[Phase("frozen", frozen, False, 1e-2), Phase("fine_tune", fine, True, 1e-3)],
        monitor="val_auc", set_backbone_trainable=set_trainable)


def tiny_arrays(n: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.uniform(0, 0.5, (n, SIZE, SIZE, 3)) + labels[:, None, None, None] * 0.5
    return images.astype("float32"), labels.astype("float32")[:, None]


def tiny_data(n: int = 128, seed: int = 0, nan_batch: int | None = None):
    """A factory batch size -> dataset; ``nan_batch`` poisons that batch's images with NaN."""
    images, labels = tiny_arrays(n, seed)

    def factory(batch_size: int) -> tf.data.Dataset:
        data = images.copy()
        if nan_batch is not None:
            data[nan_batch * batch_size:(nan_batch + 1) * batch_size] = np.nan
        return tf.data.Dataset.from_tensor_slices((data, labels)).batch(batch_size)

    return factory


def tiny_plan(batch_size: int = 16):
    return make_plan(HardwareFacts(cpu_cores=2), Settings(batch_size=batch_size))


def small_cnn_job(runs_dir, name: str, *, epochs: int, image_size: int = 32,
                  batch_size: int = 8):
    """Settings and this machine's plan for a small_cnn detection run (real data, seconds)."""
    from fisuras import hardware
    from fisuras.config import load_settings

    settings = load_settings(overrides={
        "detect.backbone": "small_cnn", "detect.image_size": image_size, "weights": "none",
        "detect.frozen_epochs": 0, "detect.epochs": epochs, "detect.batch_size": batch_size,
        "runs_dir": str(runs_dir), "run_name": name})
    return settings, hardware.make_plan(hardware.detect_facts(), settings)
