"""One training engine for both tasks: phases, turbo compile, resume, NaN guard, OOM back-off.

A task describes itself with a :class:`TaskSpec` (model builder, loss, metrics, phases, what to
monitor); the engine does the rest the same way for detection and segmentation:

* each phase sets the backbone trainable or frozen and compiles with the plan's ``jit_compile``
  and ``steps_per_execution``; under a ``mixed_float16`` policy Keras 3 wraps the optimizer in a
  ``LossScaleOptimizer`` by itself at compile time;
* each epoch is committed as one step (model with its optimizer, state, history, best:
  ``RunFolder.commit_epoch``), so a killed run resumes mid-phase from a whole epoch, never
  skipping or repeating one; ``state.json`` says which epoch and phase;
* an optimisation that breaks the first step (XLA compilation, a precision policy) is turned off
  and the fit goes on without it (``_fit_with_fallbacks``); ``plan.json`` records it;
* a NaN/inf loss stops the run at once and the last good weights stay in ``checkpoints/last.keras``;
* out-of-memory lowers the batch along the plan's ladder (64, 56, 48, 32, ...) and goes on from
  the last completed epoch (with several workers: across a restart of the job, see ``_fit_phase``);
* distributed (``fisuras.distribute``): the model lives in ``strategy.scope()``; only the writer
  (the chief) writes checkpoints and state; every worker restores from the chief's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from fisuras.errors import FisurasError
from fisuras.hardware.apply import precision_policy
from fisuras.hardware.plan import Plan, is_out_of_memory
from fisuras.runs import RunFolder, RunFolderError, RunState
from fisuras.tasks.base import Phase, TaskSpec
from fisuras.train.callbacks import (
    EpochRecorder,
    GpuMonitor,
    LearningRateSchedule,
    NanGuard,
    SpeedMeter,
)
from fisuras.train.callbacks import TrainingDiverged as TrainingDiverged

DatasetFactory = Callable[[int], tf.data.Dataset]  # batch size -> dataset


class OutOfMemoryError(FisurasError, RuntimeError):
    """Even the smallest batch of the ladder did not fit in memory."""


@dataclass
class FitResult:
    """What happened: final state, history rows and speed figures."""

    state: RunState
    history: list[dict[str, Any]]
    compile_seconds: float | None = None
    events: list[str] = field(default_factory=list)


def is_multi_worker(strategy) -> bool:
    """True for a MultiWorkerMirroredStrategy that really spans several workers."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


class Engine:
    """Fit a task's phases on a run folder, following a hardware plan.

    Example:
        >>> engine = Engine(spec, plan, run)  # doctest: +SKIP
        >>> result = engine.fit(train_data, val_data)  # doctest: +SKIP
    """

    def __init__(self, spec: TaskSpec, plan: Plan, run: RunFolder, *,
                 strategy: tf.distribute.Strategy | None = None, is_writer: bool = True,
                 extra_callbacks: list[keras.callbacks.Callback] | None = None,
                 verbose: int = 1, log: Callable[[str], None] | None = None,
                 model: keras.Model | None = None):
        self.spec, self.plan, self.run = spec, plan, run
        self.strategy = strategy or tf.distribute.get_strategy()
        self.is_writer = is_writer
        self.extra_callbacks = list(extra_callbacks or [])
        self.verbose = verbose
        self.log = log or (lambda message: print(message, file=sys.stderr))
        if model is None:
            with self.strategy.scope(), precision_policy(plan.precision):
                model = spec.build_model()
        self.model = model

    # --- public ----------------------------------------------------------------------------
    def fit(self, train_data: DatasetFactory, val_data: DatasetFactory | None,
            *, class_weight: dict[int, float] | None = None, resume: bool = False) -> FitResult:
        """Train every phase from where the run stands (a new run starts at phase 0)."""
        if resume:
            state, history = self._resume_point()
        else:
            state, history = RunState(task=self.spec.task, batch_size=self.plan.batch_size), []
        state.batch_size = state.batch_size or self.plan.batch_size
        speed = None
        phase_start = sum(p.epochs for p in self.spec.phases[:state.phase_index])
        while state.phase_index < len(self.spec.phases):
            phase = self.spec.phases[state.phase_index]
            phase_end = phase_start + phase.epochs
            if phase.epochs > 0 and state.epoch < phase_end:
                speed = self._fit_phase(phase, phase_end, state, history, train_data, val_data,
                                        class_weight)
            phase_start = phase_end
            state.phase_index += 1
            self._save_state(state)
        state.finished = True
        self._save_state(state)
        return FitResult(state=state, history=history,
                         compile_seconds=speed.compile_seconds if speed else None,
                         events=list(state.events))

    # --- one phase, with out-of-memory back-off -------------------------------------------
    def _fit_phase(self, phase: Phase, phase_end: int, state: RunState, history: list,
                   train_data: DatasetFactory, val_data: DatasetFactory | None,
                   class_weight: dict[int, float] | None) -> SpeedMeter:
        ladder = [b for b in self.plan.batch_ladder if b <= state.batch_size] or [state.batch_size]
        for attempt, batch_size in enumerate(ladder):
            state.batch_size = batch_size
            try:
                return self._fit_with_fallbacks(phase, phase_end, state, history, train_data,
                                                val_data, class_weight)
            except TrainingDiverged as error:
                self._restore_last_weights()
                message = f"training stopped: {error} The last good weights are in " \
                          f"{self.run.last_checkpoint}."
                state.events.append(message)
                self._save_state(state)
                raise TrainingDiverged(message) from None
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                if is_multi_worker(self.strategy):
                    self._stop_for_restart_at_lower_batch(ladder, attempt, state, error)
                if attempt + 1 == len(ladder):
                    raise OutOfMemoryError(
                        f"out of memory even at batch {batch_size}; try a smaller image size or "
                        "backbone (--set detect.backbone=small_cnn)") from error
                message = (f"out of memory at batch {batch_size}: lowering to "
                           f"{ladder[attempt + 1]} and going on from epoch {state.epoch + 1}")
                self.log(message)
                state.events.append(message)
                self._save_state(state)
                self._restore_last_weights()
        raise AssertionError("unreachable: the ladder loop returns or raises")

    def _fit_with_fallbacks(self, phase: Phase, phase_end: int, state: RunState, history: list,
                            train_data: DatasetFactory, val_data: DatasetFactory | None,
                            class_weight: dict[int, float] | None) -> SpeedMeter:
        """Fit at ``state.batch_size``; an optimisation that breaks the first step is turned off.

        A speed setting must never end a run: when the fit fails before its first step completes
        (XLA cannot compile the graph, or the precision policy fails), the plan's next
        optimisation goes (XLA, then mixed precision: ``Plan.fallback``), the log and
        ``plan.json`` say so with the error's first line, and the fit starts again. Out of memory
        and failures after the first step are not optimisation failures: they propagate.
        """
        while True:
            learning_rate = self._compile_for(phase, state.batch_size)
            if state.epoch > phase_end - phase.epochs:  # mid-phase: its optimizer state too
                self._restore_last_weights(with_optimizer=True)
            speed = SpeedMeter(state.batch_size * self.plan.replicas,
                               self.plan.steps_per_execution)
            callbacks = self._callbacks(phase, phase_end, state, history, speed,
                                        learning_rate)
            weights_before = self.model.get_weights()
            try:
                self.model.fit(
                    train_data(state.batch_size),
                    validation_data=val_data(state.batch_size) if val_data else None,
                    initial_epoch=state.epoch, epochs=phase_end, class_weight=class_weight,
                    callbacks=callbacks, verbose=self.verbose, shuffle=False,  # tf.data shuffles
                )
                return speed
            except Exception as error:
                first_step_done = speed.compile_seconds is not None
                fallback = None if first_step_done or is_out_of_memory(error) else (
                    self.plan.fallback(error))
                if fallback is None:
                    raise
                self._switch_plan(fallback, weights_before, state)

    def _switch_plan(self, plan: Plan, weights: list, state: RunState) -> None:
        """Go on under ``plan`` (one optimisation fewer) from ``weights``; log and record it."""
        if plan.precision != self.plan.precision:
            # A layer keeps the policy it was built with: rebuild, then copy the weights (they
            # are float32 variables under every policy).
            with self.strategy.scope(), precision_policy(plan.precision):
                self.model = self.spec.build_model()
        self.model.set_weights(weights)
        self.plan = plan
        message = f"fallback: {plan.fallbacks[-1]}; training goes on"
        self.log(message)
        state.events.append(message)
        self._save_state(state)
        if self.is_writer:
            recorded = self.run.read_json("plan.json") if self.run.file("plan.json").is_file() \
                else {}
            self.run.write_json("plan.json", {**recorded, **plan.to_dict()})

    def _stop_for_restart_at_lower_batch(self, ladder: list[int], attempt: int,
                                         state: RunState, error: BaseException) -> None:
        """Multi-worker out-of-memory: record the next batch of the ladder, then stop.

        Workers wait on each other in every all-reduce, so one cannot retry alone while the
        others are blocked; the job restarts instead (``fisuras launch --restarts``, or the
        cluster's restart policy) and resumes at the recorded batch from the last epoch.
        """
        if attempt + 1 == len(ladder):
            raise OutOfMemoryError(f"out of memory even at batch {ladder[attempt]} per "
                                   "replica") from error
        lower = ladder[attempt + 1]
        message = (f"out of memory at batch {ladder[attempt]} per replica: with several workers "
                   f"the job must restart; it resumes at batch {lower} from epoch "
                   f"{state.epoch + 1}")
        self.log(message)
        state.batch_size = lower
        state.events.append(message)
        self._save_state(state)
        raise OutOfMemoryError(message) from error

    def _compile_for(self, phase: Phase, batch_size: int) -> float:
        """Compile for ``phase`` at ``batch_size`` per replica; returns the learning rate used."""
        learning_rate = phase.learning_rate * self.plan.with_batch(batch_size).learning_rate_scale
        with self.strategy.scope():
            self.spec.set_backbone_trainable(self.model, phase.backbone_trainable)
            self.model.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                loss=self.spec.make_loss(),
                metrics=self.spec.make_metrics(),
                jit_compile=self.plan.xla,
                steps_per_execution=self.plan.steps_per_execution,
            )
        return learning_rate

    def _callbacks(self, phase: Phase, phase_end: int, state: RunState, history: list,
                   speed: SpeedMeter, learning_rate: float) -> list[keras.callbacks.Callback]:
        phase_start = phase_end - phase.epochs
        # Order matters: the guard raises before anything saves; the speed figures are in the
        # logs before the recorder writes them.
        callbacks: list[keras.callbacks.Callback] = [
            NanGuard(self.spec.divergence_advice),
            speed,
            GpuMonitor(),
            # A mid-phase restore brings the optimizer's variables back, learning rate included:
            # after an out-of-memory back-off that is the larger batch's rate. Set this batch's
            # again (and, with a schedule, at every step).
            LearningRateSchedule(learning_rate, first_epoch=phase_start, epochs=phase.epochs,
                                 shape=self.spec.lr_schedule),
            EpochRecorder(self.run, state, history, self.spec.monitor, phase.name,
                          is_writer=self.is_writer),
            *self.extra_callbacks,
        ]
        if self.is_writer:
            callbacks.append(keras.callbacks.TensorBoard(str(self.run.file("tensorboard")),
                                                         profile_batch=0))
        return callbacks

    # --- state -------------------------------------------------------------------------------
    def _resume_point(self) -> tuple[RunState, list[dict[str, Any]]]:
        """The committed state to go on from, with the run folder made whole again.

        Finishes a commit a kill cut short, removes what killed writes left, and checks that the
        last checkpoint loads: an unreadable one is set aside (named in the log) and the run
        falls back to ``best.keras`` and its epoch.
        """
        if self.is_writer:
            self.run.settle(self.run.read_state())
            for path in self.run.clean_interrupted_writes():
                self.log(f"removed {path}: left by an interrupted write")
        state = self.run.read_state()
        if state.epoch > 0:
            try:
                self._restore_last_weights()
            except RunFolderError as error:
                state = self._fall_back_to_best(state, error)
                self._restore_last_weights()
        phase_ends = _cumulative([p.epochs for p in self.spec.phases])
        state.phase_index = next((i for i, end in enumerate(phase_ends)
                                  if state.epoch < end), len(phase_ends))
        history = [row for row in self.run.read_history() if int(row["epoch"]) <= state.epoch]
        if state.phase_index == len(phase_ends):
            self.log(f"{self.run.path}: all {state.epoch} epochs trained; finishing the run")
        elif state.epoch > 0:
            self.log(f"resuming {self.run.path} at epoch {state.epoch + 1}, phase "
                     f"{self._phase_name(state)}, batch {state.batch_size}")
        return state, history

    def _fall_back_to_best(self, state: RunState, error: RunFolderError) -> RunState:
        best = self.run.best_checkpoint
        if not self.is_writer or state.best_epoch is None or not best.is_file():
            raise RunFolderError(f"{error}; no other checkpoint to resume from: start a new "
                                 "run") from None
        self.model.set_weights(load_checkpoint(best).get_weights())  # raises if unreadable too
        aside = self.run.last_checkpoint.with_name(f"last.corrupt-{time.strftime('%H%M%S')}.keras")
        self.run.last_checkpoint.replace(aside)
        state.epoch = state.best_epoch
        state.history = [r for r in (state.history or []) if int(r["epoch"]) <= state.epoch]
        state.checkpoint = None
        message = (f"{error}: set aside as {aside.name}; resuming from best.keras "
                   f"(epoch {state.epoch})")
        self.log(message)
        state.events.append(message)
        self.run.write_state(state)
        self.run.copy_best_to_last()
        self.run.settle(state)
        return state

    def _restore_last_weights(self, *, with_optimizer: bool = False) -> None:
        """Put the last committed epoch back into the model (and its optimizer, mid-phase)."""
        path = self.run.committed_checkpoint()
        if not path.is_file():
            return
        if with_optimizer:
            with self.strategy.scope():
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(path)
            return
        self.model.set_weights(load_checkpoint(path).get_weights())

    def _save_state(self, state: RunState) -> None:
        if self.is_writer:
            self.run.write_state(state)

    def _phase_name(self, state: RunState) -> str:
        phases = self.spec.phases
        return phases[min(state.phase_index, len(phases) - 1)].name


def load_checkpoint(path: Path) -> keras.Model:
    """Load a checkpoint safely; an unreadable file is a :class:`RunFolderError` naming it."""
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # torn zip, HDF5 header, JSON: Keras's messages name no file
        raise RunFolderError(f"{path}: unreadable checkpoint ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''})") from None


def _cumulative(values: list[int]) -> list[int]:
    total, out = 0, []
    for value in values:
        total += value
        out.append(total)
    return out
