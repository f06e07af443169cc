"""The engine's distributed roles, in one process on the tiny task: a non-chief worker writes
nothing in the run folder and resumes from the chief's last epoch; a multi-worker out-of-memory
stops with the next batch recorded, and the restarted job goes on at it."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from fisuras.runs import RunFolder, RunState
from fisuras.train import engine as engine_module
from fisuras.train.engine import Engine, OutOfMemoryError
from tests.train.tiny import tiny_data, tiny_plan, tiny_spec


class Crash(RuntimeError):
    pass


class CrashAfter(keras.callbacks.Callback):
    """Stands for a killed job: raises at the end of an epoch, after the epoch was recorded."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise Crash()


class EpochsSeen(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs: list[int] = []
        self.first_weights: list | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch + 1)
        if self.first_weights is None:  # after every restore (callbacks' on_train_begin)
            self.first_weights = self.model.get_weights()


def snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*"))}


def new_run(tmp_path, plan) -> RunFolder:
    run = RunFolder.create(tmp_path / "runs", "detect", "t")
    run.write_state(RunState(task="detect", batch_size=plan.batch_size))
    return run


@pytest.mark.slow
def test_a_non_chief_worker_resumes_from_the_chiefs_last_epoch_and_writes_nothing(tmp_path):
    plan = tiny_plan()
    run = new_run(tmp_path, plan)
    chief = Engine(tiny_spec(0, 4), plan, run, extra_callbacks=[CrashAfter(2)], verbose=0,
                   log=lambda m: None)
    with pytest.raises(Crash):
        chief.fit(tiny_data(), tiny_data(64, seed=1))
    assert run.read_state().epoch == 2
    chief_weights = chief.model.get_weights()
    before = snapshot(run.path)

    seen = EpochsSeen()
    worker = Engine(tiny_spec(0, 4), plan, run, is_writer=False,
                    extra_callbacks=[seen], verbose=0, log=lambda m: None)
    result = worker.fit(tiny_data(), tiny_data(64, seed=1), resume=True)
    assert seen.epochs == [3, 4]  # resumed after the chief's last epoch, nothing lost
    assert all(np.array_equal(a, b) for a, b in zip(seen.first_weights, chief_weights,
                                                    strict=True))
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert snapshot(run.path) == before  # the run folder is the chief's alone


@pytest.mark.slow
def test_multi_worker_out_of_memory_records_the_next_batch_for_the_restart(tmp_path,
                                                                          monkeypatch):
    plan = tiny_plan(batch_size=64)
    run = new_run(tmp_path, plan)

    class OutOfMemoryAbove(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model._fisuras_batch > 56:
                raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating")

    def data(batch_size):
        engine.model._fisuras_batch = batch_size
        return tiny_data()(batch_size)

    monkeypatch.setattr(engine_module, "is_multi_worker", lambda strategy: True)
    engine = Engine(tiny_spec(0, 2), plan, run, extra_callbacks=[OutOfMemoryAbove()],
                    verbose=0, log=lambda m: None)
    with pytest.raises(OutOfMemoryError, match="must restart; it resumes at batch 56"):
        engine.fit(data, None)
    saved = json.loads(run.file("state.json").read_text())
    assert saved["batch_size"] == 56 and "out of memory at batch 64" in saved["events"][0]

    # the restarted job (its workers all read this state) trains at the recorded batch
    monkeypatch.setattr(engine_module, "is_multi_worker", lambda strategy: False)
    engine = Engine(tiny_spec(0, 2), plan, run, extra_callbacks=[OutOfMemoryAbove()],
                    verbose=0, log=lambda m: None)
    result = engine.fit(data, None, resume=True)
    assert result.state.finished and {row["batch_size"] for row in result.history} == {56}
