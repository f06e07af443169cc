"""Run in a fresh process by test_mirrored.py: MirroredStrategy over 2 logical CPU devices.

Prints one JSON line of measurements. A separate process because the CPU can only be split into
logical devices before TensorFlow starts, and a process holds one MirroredStrategy.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from fisuras.config import Settings
from fisuras.distribute import make_strategy
from fisuras.hardware.facts import HardwareFacts
from fisuras.hardware.plan import make_plan

FACTS = HardwareFacts(cpu_cores=2)
# The same global batch (16) for both runs; the learning rate scale is 16 / 16 = 1 for both.
SINGLE = make_plan(FACTS, Settings(batch_size=16, reference_batch_size=16))
MIRRORED = make_plan(FACTS, Settings(batch_size=8, devices=2, reference_batch_size=16))
STRATEGY = make_strategy(MIRRORED)  # first: splits the CPU before TensorFlow starts

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fisuras.runs import RunFolder, RunState  # noqa: E402
from fisuras.tasks import Phase, TaskSpec  # noqa: E402
from fisuras.train.engine import Engine  # noqa: E402
from tests.train.tiny import SIZE, tiny_arrays  # noqa: E402

LEARNING_RATE = 1e-2


def model() -> keras.Model:
    """No BatchNorm or dropout: a replica's half batch gives exactly its share of the gradient."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, keras.layers.Dense(1, dtype="float32")(pooled))


def spec(epochs: int) -> TaskSpec:
    return TaskSpec(task="detect", build_model=model,
                    make_loss=lambda: keras.losses.BinaryCrossentropy(from_logits=True),
                    make_metrics=lambda: [keras.metrics.AUC(name="auc", from_logits=True)],
                    phases=[Phase("train", epochs, True, LEARNING_RATE)], monitor="val_auc",
                    set_backbone_trainable=lambda m, trainable: None)


IMAGES, LABELS = tiny_arrays(96)


def factory(plan, created: list[int]):
    """Per-replica batch -> deterministic dataset of global batches (as train's factories do)."""
    def data(batch_size: int) -> tf.data.Dataset:
        created.append(batch_size * plan.replicas)
        return tf.data.Dataset.from_tensor_slices((IMAGES, LABELS)).batch(
            batch_size * plan.replicas)
    return data


class OutOfMemoryFromEpoch2(keras.callbacks.Callback):
    """TensorFlow's real OOM error while the global batch is above ``fits``, from epoch 2 on."""

    def __init__(self, fits: int):
        super().__init__()
        self.fits, self.epoch, self.global_batch = fits, 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch >= 1 and self.global_batch > self.fits:
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating")


def fit(plan, strategy, epochs, root: Path, name: str, callbacks=(), created=None):
    run = RunFolder.create(root, "detect", name)
    run.write_state(RunState(task="detect", batch_size=plan.batch_size))
    engine = Engine(spec(epochs), plan, run, strategy=strategy, verbose=0, log=lambda m: None,
                    extra_callbacks=list(callbacks))
    data = factory(plan, created if created is not None else [])
    return engine, engine.fit(data, None)


def main(root: Path) -> dict:
    out: dict = {"replicas": STRATEGY.num_replicas_in_sync,
                 "devices": [d.name for d in tf.config.list_logical_devices("CPU")]}
    # 1. same final weights as one device with the same global batch
    single, _ = fit(SINGLE, None, 3, root, "single")
    mirrored, _ = fit(MIRRORED, STRATEGY, 3, root, "mirrored")
    out["max_weight_difference"] = max(
        float(np.abs(a - b).max())
        for a, b in zip(single.model.get_weights(), mirrored.model.get_weights(), strict=True))
    out["weights_moved"] = max(float(np.abs(a - b).max()) for a, b in zip(
        model().get_weights(), mirrored.model.get_weights(), strict=True))
    out["variable_type"] = type(mirrored.model.trainable_variables[0].value).__name__

    # 2. out-of-memory back-off under the strategy: new datasets with the new global batch
    created: list[int] = []
    guard = OutOfMemoryFromEpoch2(fits=8)
    data_batches = factory(MIRRORED, created)

    def tracked(batch_size):
        dataset = data_batches(batch_size)
        guard.global_batch = batch_size * MIRRORED.replicas
        return dataset

    run = RunFolder.create(root, "detect", "oom")
    run.write_state(RunState(task="detect", batch_size=MIRRORED.batch_size))
    engine = Engine(spec(3), MIRRORED, run, strategy=STRATEGY, verbose=0, log=lambda m: None,
                    extra_callbacks=[guard])
    result = engine.fit(tracked, None)
    out["oom_global_batches"] = created
    out["oom_history_batches"] = [row["batch_size"] for row in result.history]
    out["oom_events"] = result.state.events
    out["oom_learning_rate"] = float(engine.model.optimizer.learning_rate.numpy())
    out["oom_expected_learning_rate"] = LEARNING_RATE * MIRRORED.learning_rate_scale * 4 / 8

    # 3. mixed precision under the strategy (the plan keeps float32 on a CPU; a GPU plan's here)
    mixed, result = fit(replace(MIRRORED, precision="mixed_float16"), STRATEGY, 1, root, "mixed")
    out["mixed_compute_dtype"] = mixed.model.layers[1].compute_dtype
    out["mixed_optimizer"] = type(mixed.model.optimizer).__name__
    out["mixed_loss"] = result.history[-1]["loss"]
    return out


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        print("RESULT " + json.dumps(main(Path(sys.argv[1] if len(sys.argv) > 1 else folder))))
