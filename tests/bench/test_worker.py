"""The worker's TensorFlow parts, in-process and tiny: the plain input and the step clock."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fisuras.bench.worker import describe_failure, plain_input, plan_from_dict
from fisuras.config import Settings
from fisuras.hardware.facts import HardwareFacts
from fisuras.hardware.plan import make_plan


def test_plain_input_gives_model_ready_batches(tmp_path):
    paths = []
    for i in range(5):  # sizes differ from the model's: the plain input resizes
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(np.full((40, 50, 3), 50 * i, np.uint8)).save(path)
        paths.append(str(path))
    ds = plain_input(paths, [1.0, 0.0, 0.0, 1.0, 0.0], image_size=32, batch_size=4,
                     augment=True, seed=0)
    images, labels = next(iter(ds))
    assert images.shape == (4, 32, 32, 3) and images.dtype.name == "uint8"
    assert labels.shape == (4, 1) and labels.dtype.name == "float32"
    # endless (repeats) and every batch full, so one shape is ever traced
    assert all(b[0].shape[0] == 4 for b in ds.take(5))


def test_step_clock_times_calls_after_the_warm_up():
    import keras

    from fisuras.train.callbacks import SpeedMeter, StepClock

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", steps_per_execution=2)
    clock = StepClock(warmup_calls=1, wait_for_device=True)
    speed = SpeedMeter(batch_size=1, steps_per_execution=2)  # the engine's, on the same clock
    x, y = np.zeros((12, 4), np.float32), np.zeros((12, 1), np.float32)
    history = model.fit(x, y, batch_size=1, epochs=2, steps_per_epoch=6,
                        callbacks=[clock, speed], verbose=0)
    assert clock.calls == 6 and clock.measured_calls() == 5  # 2 epochs of 6 steps, 2 per call
    assert clock.compile_seconds > 0 and clock.measured_seconds() > 0
    assert clock.cores_used() >= 0
    assert clock.gpu_utilisation is None
    # the meter: the compiling call left out of epoch 1, every call of epoch 2 counted
    assert speed.compile_seconds > 0 and speed.calls == 3 and speed.measured_calls() == 3
    assert speed.images_per_second() == pytest.approx(6 / speed.measured_seconds())
    assert all(rate > 0 for rate in history.history["images_per_second"])
    with pytest.raises(RuntimeError, match="warm-up"):
        StepClock(warmup_calls=3).measured_seconds()
    with pytest.raises(ValueError, match="compiles"):
        StepClock(warmup_calls=0)


def test_plan_round_trips_through_json_and_oom_names_the_batch():
    import json

    plan = make_plan(HardwareFacts(cpu_cores=2), Settings())
    assert plan_from_dict(json.loads(json.dumps(plan.to_dict()))) == plan

    class ResourceExhaustedError(Exception):
        pass

    spec = {"configuration": {"batch_size": 64}}
    reason = describe_failure(ResourceExhaustedError("OOM when allocating tensor"), spec)
    assert reason.startswith("out of memory at batch 64")
    assert describe_failure(ValueError("bad\n  thing"), spec) == "ValueError: bad thing"
