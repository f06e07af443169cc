"""The engine's mechanics on a tiny task: phases, checkpoints, resume after a kill, guards."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from fisuras.runs import RunFolder, RunState
from fisuras.train.engine import Engine, OutOfMemoryError, TrainingDiverged
from tests.conftest import REPO_ROOT
from tests.train.tiny import tiny_data, tiny_plan, tiny_spec


def new_run(tmp_path, plan) -> RunFolder:
    run = RunFolder.create(tmp_path / "runs", "detect", "t")
    run.write_state(RunState(task="detect", batch_size=plan.batch_size))
    return run


class TrainableProbe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(len(self.model.trainable_weights))


def test_phases_run_in_order_and_checkpoints_are_written(tmp_path):
    plan = tiny_plan()
    run = new_run(tmp_path, plan)
    probe = TrainableProbe()
    engine = Engine(tiny_spec(2, 2), plan, run, extra_callbacks=[probe], verbose=0)
    result = engine.fit(tiny_data(), tiny_data(64, seed=1))
    assert [row["phase"] for row in result.history] == ["frozen"] * 2 + ["fine_tune"] * 2
    assert [row["epoch"] for row in run.read_history()] == [1, 2, 3, 4]
    # frozen: only the head (kernel + bias); fine-tune: backbone conv too (BatchNorm stays frozen
    # in the real builders; here it is a plain trainable layer)
    assert probe.seen[0] == 2 and probe.seen[-1] > 2
    assert result.state.finished and result.state.epoch == 4
    assert run.last_checkpoint.is_file() and run.best_checkpoint.is_file()
    assert not [p for p in run.last_checkpoint.parent.iterdir() if p.name.startswith(".")]
    assert result.history[-1]["images_per_second"] > 0
    assert result.compile_seconds is not None and result.compile_seconds > 0
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0]  # it learns the bright/dark rule


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, keras
    from fisuras.train.engine import Engine
    from fisuras.runs import RunFolder, RunState
    from tests.train.tiny import tiny_data, tiny_plan, tiny_spec

    class KillAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == {kill_after}:
                os.kill(os.getpid(), signal.SIGKILL)

    plan = tiny_plan()
    run = RunFolder(__import__("pathlib").Path({run!r}))
    resume = {resume}
    if not resume:
        run.write_state(RunState(task="detect", batch_size=plan.batch_size))
    callbacks = [] if resume else [KillAt()]
    engine = Engine(tiny_spec(2, 3), plan, run, extra_callbacks=callbacks, verbose=0)
    result = engine.fit(tiny_data(), tiny_data(64, seed=1), resume=resume)
    print("ITER", int(engine.model.optimizer.iterations.numpy()))
""")


def run_script(run_path, kill_after: int, resume: bool) -> subprocess.CompletedProcess:
    code = KILL_SCRIPT.format(kill_after=kill_after, run=str(run_path), resume=resume)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_a_killed_run_resumes_at_the_right_epoch_and_phase(tmp_path):
    kill_after = 3  # in the fine-tuning phase: the frozen phase must not run again
    run = RunFolder.create(tmp_path / "runs", "detect", "k")
    killed = run_script(run.path, kill_after, resume=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    state = run.read_state()
    assert state.epoch == kill_after and not state.finished
    resumed = run_script(run.path, 0, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {run.path} at epoch {kill_after + 1}" in resumed.stderr
    history = run.read_history()
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    assert [row["phase"] for row in history] == ["frozen"] * 2 + ["fine_tune"] * 3
    assert run.read_state().finished
    # The optimizer state came back too: the fine-tune optimizer counts every step of its phase
    # (4 steps per epoch at 64 images / batch 16... here 128 / 16 = 8 per epoch).
    iterations = int(resumed.stdout.split("ITER")[1])
    assert iterations == 3 * 8


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_weights(tmp_path):
    plan = tiny_plan()
    run = new_run(tmp_path, plan)
    spec = tiny_spec(1, 2)
    engine = Engine(spec, plan, run, verbose=0)
    good = engine  # first epoch clean
    good.fit(tiny_data(), None)  # 3 clean epochs to have checkpoints
    weights_before = [w.copy() for w in keras.models.load_model(
        run.last_checkpoint, compile=False).get_weights()]
    poisoned = RunFolder.create(tmp_path / "runs", "detect", "nan")
    poisoned.write_state(RunState(task="detect", batch_size=plan.batch_size))
    engine2 = Engine(spec, plan, poisoned, verbose=0)

    calls = {"n": 0}
    clean, bad = tiny_data(), tiny_data(nan_batch=3)

    def data(batch_size):  # clean first epoch, NaN in the second
        calls["n"] += 1
        return clean(batch_size) if calls["n"] == 1 else bad(batch_size)

    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 2, batch 4") as caught:
        engine2.fit(data, None)
    assert "learning rate" in str(caught.value) and "last.keras" in str(caught.value)
    state = poisoned.read_state()
    assert state.epoch == 1 and "loss became nan" in state.events[-1]
    kept = keras.models.load_model(poisoned.last_checkpoint, compile=False).get_weights()
    assert all(np.isfinite(w).all() for w in kept)
    assert all(np.isfinite(w).all() for w in engine2.model.get_weights())
    assert len(weights_before) == len(kept)


class FakeOutOfMemory(keras.callbacks.Callback):
    """Raises TensorFlow's real OOM error type while the batch is above ``fits``."""

    def __init__(self, fits: int):
        super().__init__()
        self.fits = fits
        self.batches_tried: list[int] = []

    def on_train_batch_end(self, batch, logs=None):
        size = int(self.model._fisuras_batch) if hasattr(self.model, "_fisuras_batch") else None
        if size is not None and size > self.fits:
            raise tf.errors.ResourceExhaustedError(None, None, f"OOM when allocating batch {size}")


@pytest.mark.slow
def test_out_of_memory_lowers_the_batch_and_goes_on(tmp_path):
    plan = tiny_plan(batch_size=64)
    run = new_run(tmp_path, plan)
    engine = Engine(tiny_spec(1, 1), plan, run, verbose=0, log=lambda m: None)

    def data(batch_size):
        engine.model._fisuras_batch = batch_size
        return tiny_data()(batch_size)

    engine.extra_callbacks.append(FakeOutOfMemory(fits=48))
    result = engine.fit(data, None)
    assert result.state.batch_size == 48
    events = result.state.events
    assert events[0].startswith("out of memory at batch 64: lowering to 56")
    assert events[1].startswith("out of memory at batch 56: lowering to 48")
    assert {row["batch_size"] for row in result.history} == {48}
    assert json.loads(run.file("state.json").read_text())["batch_size"] == 48


def test_out_of_memory_at_the_smallest_batch_is_a_clear_error(tmp_path):
    plan = tiny_plan(batch_size=2)
    run = new_run(tmp_path, plan)
    engine = Engine(tiny_spec(1, 1), plan, run, verbose=0, log=lambda m: None)
    engine.model._fisuras_batch = 99
    engine.extra_callbacks.append(FakeOutOfMemory(fits=0))
    with pytest.raises(OutOfMemoryError, match="even at batch 1"):
        engine.fit(tiny_data(), None)


def test_warmup_cosine_rises_over_the_first_epoch_then_decays_to_the_floor():
    from fisuras.train.callbacks import warmup_cosine_rate

    rates = [warmup_cosine_rate(1e-3, p / 4, 5) for p in range(21)]  # quarter epochs
    assert rates[1] == pytest.approx(2.5e-4) and rates[4] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(rates[:4], rates[1:5], strict=True))  # warm-up
    assert all(a > b for a, b in zip(rates[4:20], rates[5:21], strict=True))  # decay
    assert rates[-1] == pytest.approx(1e-5)  # 1% of the rate at the phase's end
    assert warmup_cosine_rate(1e-3, 0.5, 1) == pytest.approx(5e-4)  # a 1-epoch phase: warm-up


class RateProbe(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


def test_the_engine_follows_the_schedule_per_step_and_per_phase(tmp_path):
    plan = tiny_plan()
    spec = tiny_spec(2, 2)
    spec.lr_schedule = "warmup_cosine"
    probe = RateProbe()
    run = new_run(tmp_path, plan)
    Engine(spec, plan, run, extra_callbacks=[probe], verbose=0).fit(tiny_data(), None)
    steps = 128 // plan.batch_size  # per epoch
    frozen, fine = probe.rates[:2 * steps], probe.rates[2 * steps:]
    assert len(fine) == 2 * steps
    for rates, base in ((frozen, 1e-2), (fine, 1e-3)):  # tiny_spec's two phase rates
        assert rates[0] < rates[steps - 1] <= base * 1.0001  # warm-up within the first epoch
        assert rates[steps] > rates[-1] >= base * 0.01  # then down towards 1% of the base
