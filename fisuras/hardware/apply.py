"""Apply a plan: environment variables before TensorFlow starts, then ``tf.config`` and Keras.

This is the one place that changes TensorFlow's process-wide state. Some settings only work
before TF initialises its devices (threads, memory growth); when it is too late, the note says so
instead of raising, because a user's script must never die over a speed setting.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from fisuras.hardware.plan import Plan


@dataclass
class AppliedPlan:
    """The plan plus what was actually applied and what could not be."""

    plan: Plan
    notes: list[str] = field(default_factory=list)
    tensorflow_applied: bool = False


def apply_environment(plan: Plan, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set the plan's environment variables; a value the user already set is kept.

    Must run before ``import tensorflow`` to take effect; afterwards it says so.
    """
    environ = os.environ if environ is None else environ
    notes = []
    late = "tensorflow" in sys.modules
    for name, value in plan.env.items():
        if name in environ and environ[name] != value:
            notes.append(f"kept your {name}={environ[name]} (plan suggests {value})")
            continue
        environ[name] = value
    if late and plan.env:
        notes.append("TensorFlow was already imported: environment settings "
                     f"({', '.join(plan.env)}) apply to the next process only")
    return notes


def apply_tensorflow(plan: Plan) -> list[str]:
    """Apply memory, threads, precision policy and XLA through ``tf.config`` and Keras."""
    import keras
    import tensorflow as tf

    notes = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            if plan.memory_limit_mb:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=plan.memory_limit_mb)])
            elif plan.memory_growth:
                tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError) as error:
            notes.append(f"memory setting for {gpu.name} not applied ({error})")
    try:
        if tf.config.threading.get_intra_op_parallelism_threads() != plan.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(plan.intra_op_threads)
        if tf.config.threading.get_inter_op_parallelism_threads() != plan.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(plan.inter_op_threads)
    except RuntimeError as error:
        notes.append(f"thread counts not applied: TensorFlow already initialised ({error})")
    # The global policy is for users' own models (the seed door); fisuras builds its models
    # under ``precision_policy(plan.precision)`` whatever the global one is.
    keras.mixed_precision.set_global_policy(plan.precision)
    # XLA has one route: ``model.compile(jit_compile=plan.xla)`` (fisuras does it; Keras's own
    # default "auto" compiles users' models with XLA already). No global auto-clustering.
    return notes


@contextmanager
def precision_policy(precision: str) -> Iterator[None]:
    """Build models under the Keras dtype policy ``precision``, then restore the previous one.

    A Keras layer takes the global policy when it is created and keeps it, and ``compile`` adds
    loss scaling when the model's policy is ``mixed_float16``: building a model inside this block
    is all a plan's precision needs, whatever the process-wide policy is.

    Example:
        >>> with precision_policy("mixed_float16"):  # doctest: +SKIP
        ...     model = build_segmenter("unet_light", image_size=64, weights="none")
        >>> model.dtype_policy.name  # doctest: +SKIP
        'mixed_float16'
    """
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def applied_state() -> dict:
    """What TensorFlow and Keras report now (for tests and the doctor)."""
    import keras
    import tensorflow as tf

    return {
        "policy": keras.mixed_precision.global_policy().name,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "jit": bool(tf.config.optimizer.get_jit()),
    }
