"""One benchmark configuration in its own process: ``python -m fisuras.bench.worker SPEC OUT``.

Each configuration gets a fresh process because TensorFlow's global state (precision policy,
XLA flags, thread pools, environment variables read at import) cannot be reset in-process, and
the precision policy must be set before the model is built.

SPEC is a JSON file written by ``fisuras.bench.run``; OUT receives ``{"status": "ok", ...}`` with
the figures, or ``{"status": "failed", "reason": ...}`` (exit code 1). What is measured:

* a real model from the settings (random weights: speed does not depend on them), compiled as
  the training engine compiles it (Adam, the task's loss and metrics, ``jit_compile``,
  ``steps_per_execution``), trained for ``warmup_calls`` + ``measured_calls`` training calls;
* ``compile_seconds``: the first call (tracing, XLA compilation, first batch);
* ``images_per_second``: images of the measured calls / their wall time, after the warm-up;
* peak memory: TensorFlow's GPU peak on a GPU, else the process's peak RSS;
* GPU utilisation: NVML's mean over the measured calls, when ``pynvml`` imports.

Test hook: ``"force_fail": true`` in SPEC (``fisuras benchmark --force-fail NAME`` or the
``FISURAS_BENCH_FORCE_FAIL`` environment variable) makes the configuration raise after TensorFlow
is set up, so tests can check that a failure is reported as FAILED with its reason.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from fisuras.bench.turbo import Configuration, runtime_env
from fisuras.config import Settings
from fisuras.errors import FisurasError
from fisuras.files import write_json
from fisuras.hardware.apply import apply_environment, apply_tensorflow
from fisuras.hardware.plan import Plan, is_out_of_memory


class ForcedFailure(FisurasError, RuntimeError):
    """Raised on purpose by the test hook."""


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """Rebuild a :class:`Plan` from ``Plan.to_dict()`` (JSON turns tuples into lists)."""
    fields = {k: v for k, v in data.items() if k in Plan.__dataclass_fields__}
    fields["batch_ladder"] = tuple(fields["batch_ladder"])
    fields["fallbacks"] = tuple(fields.get("fallbacks", ()))
    return Plan(**fields)


def main(argv: list[str] | None = None) -> int:
    """Measure the configuration in SPEC and write the result to OUT; 0 on success, 1 if not."""
    spec_path, out_path = argv if argv is not None else sys.argv[1:]
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    try:
        result: dict[str, Any] = {"status": "ok", **measure(spec)}
        code = 0
    except Exception as error:  # every failure becomes a reason in the table, never a number
        traceback.print_exc()  # the whole story goes to the configuration's log file
        result = {"status": "failed", "reason": describe_failure(error, spec)}
        code = 1
    write_json(out_path, result, indent=1)
    return code


def describe_failure(error: BaseException, spec: dict[str, Any]) -> str:
    """One line: what failed and, for out-of-memory, at which batch."""
    name, text = type(error).__name__, " ".join(str(error).split())
    if is_out_of_memory(error):
        batch = spec["configuration"]["batch_size"]
        return f"out of memory at batch {batch} ({name}: {text[:160]})"
    return f"{name}: {text[:300]}" if text else name


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Set TensorFlow up for the configuration, train, and return the figures."""
    config = Configuration(**spec["configuration"])
    plan = plan_from_dict(spec["plan"])
    settings = Settings.model_validate(spec["settings"])
    # Environment variables first: TensorFlow reads them when it is imported.
    if config.full_plan:
        apply_environment(plan)
    elif config.runtime:
        apply_environment(replace(plan, env=runtime_env(plan)))
    import keras

    if config.full_plan:
        apply_tensorflow(plan)
    else:
        # The GPU memory setting always (so a small shared card behaves as in a real run);
        # threads only for "runtime" (0 = TensorFlow's defaults); global JIT off, since XLA is
        # asked per model in compile().
        intra, inter = ((plan.intra_op_threads, plan.inter_op_threads) if config.runtime
                        else (0, 0))
        apply_tensorflow(replace(plan, precision=config.precision, xla=False,
                                 intra_op_threads=intra, inter_op_threads=inter))
    if spec.get("force_fail"):
        raise ForcedFailure(f"forced failure of {config.name!r} (test hook)")

    from fisuras.bench.figures import GpuSampler, applied_state, host_peak_rss_mb, peak_memory
    from fisuras.hardware.plan import linear_learning_rate_scale
    from fisuras.tasks import get_task
    from fisuras.train.callbacks import StepClock

    task = get_task("detect").spec(settings)
    keras.utils.set_random_seed(settings.seed)
    model = task.build_model()
    learning_rate = settings.detect.learning_rate * linear_learning_rate_scale(
        config.batch_size, settings.detect.reference_batch_size)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=task.make_loss(),
                  metrics=task.make_metrics(), jit_compile=config.xla,
                  steps_per_execution=config.steps_per_execution)
    dataset = make_input(spec, config, settings, plan)

    warmup, measured = int(spec["warmup_calls"]), int(spec["measured_calls"])
    clock = StepClock(warmup, wait_for_device=True, start_sampler=GpuSampler.start_if_available)
    model.fit(dataset, epochs=1, steps_per_epoch=(warmup + measured) * config.steps_per_execution,
              callbacks=[clock], verbose=0, shuffle=False)  # tf.data shuffles
    images = measured * config.steps_per_execution * config.batch_size
    seconds = clock.measured_seconds()
    memory_mb, memory_kind = peak_memory()
    return {
        "images_per_second": images / seconds,
        "compile_seconds": clock.compile_seconds,
        "peak_memory_mb": memory_mb,
        "memory_kind": memory_kind,
        "gpu_utilisation": clock.gpu_utilisation,
        "details": {
            "measured_steps": measured * config.steps_per_execution,
            "warmup_steps": warmup * config.steps_per_execution,
            "measured_seconds": seconds,
            "cores_used": clock.cores_used(),
            "images_measured": images,
            "host_peak_rss_mb": host_peak_rss_mb(),
            "applied": applied_state(model),
        },
    }


# --- input ---------------------------------------------------------------------------------------

def make_input(spec: dict[str, Any], config: Configuration, settings: Settings, plan: Plan):
    """The training dataset: plain (what a simple script does) or the fisuras pipeline; endless."""
    from fisuras.data import make_dataset, read_dataset

    samples = read_dataset(spec["data"], task="detect").samples
    size = settings.detect.image_size
    if config.input_pipeline == "fisuras":
        return make_dataset(
            samples, task="detect", image_size=size, batch_size=config.batch_size,
            training=True, augment=settings.augment, cache=spec["cache"],
            cache_budget_bytes=plan.cache_budget_bytes, cache_dir=spec["cache_dir"],
            seed=settings.seed, drop_remainder=True,  # one batch shape: no XLA recompiles
        ).repeat()
    return plain_input([s.image for s in samples], [float(s.label) for s in samples],
                       image_size=size, batch_size=config.batch_size,
                       augment=settings.augment, seed=settings.seed)


def plain_input(paths: list[str], labels: list[float], *, image_size: int, batch_size: int,
                augment: bool, seed: int):
    """A naive tf.data input: one image at a time, no parallel map, cache or prefetch.

    It decodes and resizes whole images and flips them at random when ``augment``, so it does
    comparable work to the fisuras pipeline; what it lacks is the parallelism and overlap.
    """
    import tensorflow as tf

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, (image_size, image_size))
        if augment:
            image = tf.image.random_flip_up_down(tf.image.random_flip_left_right(image))
        return tf.cast(image, tf.uint8), tf.reshape(label, (1,))

    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    ds = ds.shuffle(len(paths), seed=seed).repeat()
    return ds.map(load).batch(batch_size, drop_remainder=True)


if __name__ == "__main__":
    sys.exit(main())
