"""One training engine for both tasks: phases, turbo compile, resume, NaN guard, OOM back-off.

A task describes itself with a :class:`TaskSpec` (model builder, loss, metrics, phases, what to
monitor); the engine does the rest the same way for detection and segmentation:

* each phase sets the backbone trainable or frozen and compiles with the plan's ``jit_compile``
  and ``steps_per_execution``; under a ``mixed_float16`` policy Keras 3 wraps the optimizer in a
  ``LossScaleOptimizer`` by itself at compile time;
* Keras's own ``BackupAndRestore`` keeps weights + optimizer + epoch per phase, so a killed run
  resumes mid-phase; ``state.json`` says which phase;
* an optimisation that breaks the first step (XLA compilation, a precision policy) is turned off
  and the fit goes on without it (``_fit_with_fallbacks``); ``plan.json`` records it;
* a NaN/inf loss stops the run at once and the last good weights stay in ``checkpoints/last.keras``;
* out-of-memory lowers the batch along the plan's ladder (64, 56, 48, 32, ...) and goes on from
  the last completed epoch (with several workers: across a restart of the job, see ``_fit_phase``);
* distributed (``fisuras.distribute``): the model lives in ``strategy.scope()``; only the writer
  (the chief) writes checkpoints, state and backups; other workers restore from the chief's
  backup and write theirs to ``worker_dir``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from fisuras.distribute.backup import WorkerBackupAndRestore
from fisuras.distribute.keras_compat import is_multi_worker
from fisuras.hardware.apply import precision_policy
from fisuras.hardware.plan import Plan
from fisuras.train.callbacks import (
    EpochRecorder,
    GpuMonitor,
    LearningRateSchedule,
    NanGuard,
    SpeedMeter,
)
from fisuras.train.callbacks import TrainingDiverged as TrainingDiverged
from fisuras.train.run import RunFolder, RunState

DatasetFactory = Callable[[int], tf.data.Dataset]  # batch size -> dataset


class OutOfMemoryError(RuntimeError):
    """Even the smallest batch of the ladder did not fit in memory."""


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs with one optimizer and one trainable setting."""

    name: str
    epochs: int
    backbone_trainable: bool
    learning_rate: float


@dataclass
class TaskSpec:
    """What a task brings to the engine."""

    task: str
    build_model: Callable[[], keras.Model]
    make_loss: Callable[[], keras.losses.Loss]
    make_metrics: Callable[[], list]
    phases: list[Phase]
    monitor: str  # a validation metric to maximise, e.g. "val_auc"
    set_backbone_trainable: Callable[[keras.Model, bool], None]
    lr_schedule: str = "constant"  # or "warmup_cosine" (``LearningRateSchedule``)
    divergence_advice: str = ("Lower the learning rate (--set learning_rate=...), or turn off "
                              "mixed precision (--set gpu.enable_mixed_precision=false), and check "
                              "the data for broken images.")


@dataclass
class FitResult:
    """What happened: final state, history rows and speed figures."""

    state: RunState
    history: list[dict[str, Any]]
    compile_seconds: float | None = None
    events: list[str] = field(default_factory=list)


def is_out_of_memory(error: BaseException) -> bool:
    """True for TensorFlow's out-of-memory errors (GPU or host), however they surface."""
    if isinstance(error, tf.errors.ResourceExhaustedError):
        return True
    text = str(error)
    return "OOM when allocating" in text or "RESOURCE_EXHAUSTED" in text


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
                 model: keras.Model | None = None, worker_dir: str | Path | None = None):
        self.spec, self.plan, self.run = spec, plan, run
        self.strategy = strategy or tf.distribute.get_strategy()
        self.is_writer = is_writer
        # A non-writer's private folder (its own backups); the run folder is the chief's.
        self.worker_dir = Path(worker_dir) if worker_dir else None
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
        state = self.run.read_state() if resume else RunState(task=self.spec.task,
                                                              batch_size=self.plan.batch_size)
        state.batch_size = state.batch_size or self.plan.batch_size
        history = self.run.read_history() if resume else []
        if resume and state.epoch > 0:
            self._restore_last_weights()
            self.log(f"resuming {self.run.path} at epoch {state.epoch + 1}, phase "
                     f"{self._phase_name(state)}, batch {state.batch_size}")
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
                        "backbone (--set backbone_detect=small_cnn)") from error
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
            finally:
                # BackupAndRestore leaves its epoch on the model, and Keras prefers it over the
                # initial_epoch of every later fit() call: clear it so the next phase starts right.
                self.model._initial_epoch = None

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
        scale = batch_size * self.plan.replicas / (self.plan.batch_size * self.plan.replicas)
        learning_rate = phase.learning_rate * self.plan.learning_rate_scale * scale
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
            self._backup_and_restore(phase),
            # The backup restores the optimizer's variables, learning rate included: after an
            # out-of-memory back-off that is the larger batch's rate. Set this batch's again
            # (and, with a schedule, at every step).
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

    def _backup_and_restore(self, phase: Phase) -> keras.callbacks.Callback:
        """Keras's BackupAndRestore on the run folder; for a non-writer, the worker variant."""
        chief_dir = self.run.backup_dir(phase.name)
        if self.is_writer:
            return keras.callbacks.BackupAndRestore(str(chief_dir), double_checkpoint=True,
                                                    delete_checkpoint=False)
        if self.worker_dir is None:
            self.worker_dir = Path(tempfile.mkdtemp(prefix="fisuras-worker-"))
        return WorkerBackupAndRestore(chief_dir, self.worker_dir / "backup" / phase.name,
                                      double_checkpoint=True, delete_checkpoint=False)

    # --- state -------------------------------------------------------------------------------
    def _restore_last_weights(self) -> None:
        """Put the weights of the last completed epoch back into the model."""
        if not self.run.last_checkpoint.is_file():
            return
        saved = keras.models.load_model(self.run.last_checkpoint, compile=False, safe_mode=True)
        self.model.set_weights(saved.get_weights())

    def _save_state(self, state: RunState) -> None:
        if self.is_writer:
            self.run.write_state(state)

    def _phase_name(self, state: RunState) -> str:
        phases = self.spec.phases
        return phases[min(state.phase_index, len(phases) - 1)].name
