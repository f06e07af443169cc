"""Keras callbacks: NaN guard, step clock and speed meter, epoch recorder (checkpoints, history)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import keras

from fisuras.errors import FisurasError
from fisuras.runs import RunFolder, RunState


class TrainingDiverged(FisurasError, RuntimeError):
    """The loss became NaN or infinite; the last good weights were kept."""


class NanGuard(keras.callbacks.Callback):
    """Stop at the first non-finite loss by raising, before any checkpoint can save bad weights.

    Raising (rather than ``stop_training``) matters: Keras still calls ``on_epoch_end`` after
    ``stop_training``, which would checkpoint the NaN weights.
    """

    def __init__(self, advice: str):
        super().__init__()
        self.advice = advice
        self.epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}. "
                f"{self.advice}")


class StepClock(keras.callbacks.Callback):
    """Wall and CPU time of training calls: the one step timer (engine, benchmarks).

    The first call (tracing, compilation) is timed apart: ``compile_seconds``. The measured
    *window* then runs from the end of its ``warmup_calls``-th call (from the start of its first
    call when ``warmup_calls`` is 0) to the end of the last call; :meth:`restart` opens a new
    window (an epoch). Only a few numbers are kept, however long training runs. With
    ``steps_per_execution`` k, one call runs k steps.

    Args:
        warmup_calls: calls of the first window left out of the measure (at least the first).
        wait_for_device: read the loss at each call's end, which waits for the (asynchronous)
            GPU work, so each time stamp is the real end of its call.
        start_sampler: called once when the warm-up is over; its result's ``stop()`` (at the
            end of training) gives ``gpu_utilisation``.
    """

    def __init__(self, warmup_calls: int = 1, *, wait_for_device: bool = False,
                 start_sampler: Callable[[], Any] | None = None):
        super().__init__()
        if warmup_calls < 1:
            raise ValueError(f"warmup_calls must be >= 1 (the first call compiles), got "
                             f"{warmup_calls}")
        self.wait_for_device = wait_for_device
        self.start_sampler = start_sampler
        self.compile_seconds: float | None = None
        self.gpu_utilisation: float | None = None
        self.calls = 0  # calls ended in this window
        self._sampler: Any = None
        self._first_begin: float | None = None
        self._begin = 0.0
        self.restart(warmup_calls)

    def restart(self, warmup_calls: int = 0) -> None:
        """Open a new window: measure from the end of its ``warmup_calls``-th call."""
        self.calls, self.warmup_calls = 0, warmup_calls
        self._start: tuple[float, float] | None = None  # (wall, CPU) seconds
        self._end: tuple[float, float] | None = None

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._begin = time.perf_counter()
        if self._first_begin is None:
            self._first_begin = self._begin
        if self.calls == 0 and self.warmup_calls == 0:
            self._start = (self._begin, time.process_time())

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.wait_for_device and logs and "loss" in logs:
            float(logs["loss"])
        self._end = (time.perf_counter(), time.process_time())  # CPU: all threads
        self.calls += 1
        if self.compile_seconds is None:
            self.compile_seconds = self._end[0] - self._begin
        if self.calls == self.warmup_calls:
            self._start = self._end
            if self.start_sampler is not None and self._sampler is None:
                self._sampler = self.start_sampler()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._sampler is not None:
            self.gpu_utilisation = self._sampler.stop()

    def measured_calls(self) -> int:
        """Calls in the window after its warm-up."""
        return max(0, self.calls - self.warmup_calls)

    def measured_seconds(self) -> float:
        """Wall time of the window's measured calls."""
        if not self.measured_calls() or self._start is None or self._end is None:
            raise RuntimeError(f"only {self.calls} training calls ran; expected more than "
                               f"{self.warmup_calls} warm-up calls")
        return self._end[0] - self._start[0]

    def cores_used(self) -> float:
        """CPU seconds per second over the measured calls: about the core count when nothing
        else competes for the cores, lower when other processes take their share."""
        cpu = self._end[1] - self._start[1] if self._start and self._end else 0.0
        return cpu / self.measured_seconds()


class SpeedMeter(StepClock):
    """Images per second per epoch, with the first step (tracing/compilation) timed apart.

    Adds ``images_per_second`` to the batch logs (shown by the progress bar) and to the epoch logs
    (written to history.csv); ``compile_seconds`` is the first step of the first epoch, left out
    of that epoch's rate.
    """

    def __init__(self, batch_size: int, steps_per_execution: int = 1):
        super().__init__(warmup_calls=1)
        self.images_per_call = batch_size * steps_per_execution
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()
        if self.compile_seconds is not None:
            self.restart(warmup_calls=0)  # compiled already: every call of the epoch counts

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        super().on_train_batch_end(batch, logs)
        rate = self.images_per_second()
        if logs is not None and rate:
            logs["images_per_second"] = rate

    def images_per_second(self) -> float:
        if not self.measured_calls():
            return 0.0
        elapsed = self.measured_seconds()
        return self.measured_calls() * self.images_per_call / elapsed if elapsed > 0 else 0.0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            # An epoch whose only step was the first (compiling) one has no timed step: its
            # whole-epoch rate, compilation included, rather than a 0 that reads as a stall.
            logs["images_per_second"] = self.images_per_second() or (
                self.calls * self.images_per_call
                / max(time.perf_counter() - self._epoch_start, 1e-9))
            if self.compile_seconds is not None:
                logs["compile_seconds"] = self.compile_seconds


class GpuMonitor(keras.callbacks.Callback):
    """GPU memory and utilisation per epoch, through NVML when it is installed (else nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self._handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:  # no NVML, no GPU, or no driver: the monitor stays silent
            self._handle = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._handle is None or logs is None:
            return
        memory = self._nvml.nvmlDeviceGetMemoryInfo(self._handle)
        logs["gpu_memory_mb"] = memory.used / 2**20
        logs["gpu_utilisation"] = self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu


class EpochRecorder(keras.callbacks.Callback):
    """At each epoch end: the epoch's model, state, history and best, committed as one step.

    See :meth:`RunFolder.commit_epoch`; a write that fails (disk full, read-only folder) names
    the file and leaves the previous epoch's record whole, so ``--resume`` goes on from it.
    """

    def __init__(self, run: RunFolder, state: RunState, history: list[dict[str, Any]],
                 monitor: str, phase: str, is_writer: bool = True,
                 on_epoch: Callable[[int, dict], None] | None = None):
        super().__init__()
        self.run, self.state, self.history = run, state, history
        self.monitor, self.phase, self.is_writer = monitor, phase, is_writer
        self.on_epoch = on_epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        row = {"epoch": epoch + 1, "phase": self.phase, "batch_size": self.state.batch_size,
               **{k: float(v) for k, v in logs.items()}}
        self.history[:] = [r for r in self.history if int(r["epoch"]) < epoch + 1] + [row]
        value = logs.get(self.monitor)
        improved = value is not None and (self.state.best_value is None
                                          or value > self.state.best_value)
        record = replace(self.state, epoch=epoch + 1, history=list(self.history))
        if improved:
            record.best_value, record.best_epoch = float(value), epoch + 1
        if self.is_writer:
            save = self.model.save
            try:
                self.run.commit_epoch(record, lambda tmp: save(tmp))
            except OSError as error:
                raise CheckpointWriteError(
                    f"could not record epoch {epoch + 1} in {self.run.path} "
                    f"({error.strerror or error}: {error.filename or 'checkpoint'}); the run "
                    f"is kept at epoch {self.state.epoch}. Free space or fix the folder, then "
                    f"resume: --resume {self.run.path}") from error
        # Only a committed epoch moves the in-memory state on.
        self.state.__dict__.update(record.__dict__)
        if self.on_epoch is not None:
            self.on_epoch(epoch, logs)


class CheckpointWriteError(FisurasError, OSError):
    """An epoch's record could not be written; the previous epoch's is intact."""


def warmup_cosine_rate(base: float, progress: float, epochs: int, *, warmup: float = 1.0,
                       floor: float = 0.01) -> float:
    """The rate ``progress`` epochs into a phase of ``epochs``: linear warm-up, cosine decay.

    Rises linearly to ``base`` over the first ``warmup`` epochs (fresh BatchNorm statistics and
    Adam's moment estimates are unreliable in the first steps), then follows a half cosine down
    to ``floor * base`` at the end of the phase: the shape of Keras's ``CosineDecay`` with
    ``warmup_steps``, written per epoch fraction so that it needs no step count up front.

    Example:
        >>> [round(warmup_cosine_rate(1.0, p, 11), 3) for p in (0.5, 1.0, 6.0, 11.0)]
        [0.5, 1.0, 0.505, 0.01]
    """
    warmup = min(warmup, epochs)
    if progress < warmup:
        return base * max(progress, 1e-3) / warmup
    remaining = epochs - warmup
    done = 1.0 if remaining <= 0 else min(1.0, (progress - warmup) / remaining)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done)))


class LearningRateSchedule(keras.callbacks.Callback):
    """Sets the optimizer's rate at every step from the epoch and step alone.

    ``shape="constant"`` sets ``base`` once at the start (after a mid-phase restore brings back the
    optimizer, whose saved rate may be another batch size's); ``"warmup_cosine"`` follows
    :func:`warmup_cosine_rate` over the phase. Stateless, so a resumed run continues the curve.
    """

    def __init__(self, base: float, *, first_epoch: int, epochs: int,
                 shape: str = "constant"):
        super().__init__()
        self.base, self.first_epoch, self.epochs, self.shape = base, first_epoch, epochs, shape
        self._epoch = first_epoch

    def rate(self, epoch: int, batch: int) -> float:
        if self.shape == "constant":
            return self.base
        steps = self.params.get("steps") if self.params else None
        progress = (epoch - self.first_epoch) + (batch / steps if steps else 0.0)
        return warmup_cosine_rate(self.base, progress, self.epochs)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.model.optimizer.learning_rate = self.rate(self._epoch, 0)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.shape != "constant":
            self.model.optimizer.learning_rate = self.rate(self._epoch, batch)
