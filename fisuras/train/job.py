"""The training job: read and check the data, split it, build the model, fit, finish the run.

``train`` is the whole job for either task; the task object (``fisuras.tasks``) says what differs.
A distributed worker passes its :class:`WorkerRole` (``fisuras.distribute`` makes it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fisuras.config import Settings
from fisuras.errors import FisurasError
from fisuras.hardware.plan import Plan
from fisuras.runs import RunFolder, RunState
from fisuras.tasks import adopt_shipped_weights, get_task


@dataclass
class TrainResult:
    """Where the run is and what it measured."""

    run: RunFolder
    state: RunState
    history: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)
    compile_seconds: float | None = None


@dataclass
class WorkerRole:
    """A distributed worker's part in a job (the default: one process that does everything).

    Only the writer (the chief) writes the run folder; another worker keeps its own files in
    ``worker_dir`` and reads the chief's run folder on resume. ``on_manifest`` sees a new run's
    split before training (the workers check there that they all split alike).
    """

    strategy: Any = None  # a tf.distribute.Strategy; None: TensorFlow's default
    is_writer: bool = True
    worker_dir: Path | None = None
    on_manifest: Callable[[Any], None] | None = None


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the run keeps its last complete epoch and can resume."""

    def __init__(self, run_path: Path, task: str):
        self.run_path, self.task = run_path, task
        super().__init__(f"interrupted: {run_path} keeps its last complete epoch; resume with: "
                         f"fisuras train {task} --resume {run_path}")


class MissingDataError(FisurasError, ValueError):
    """No dataset was given for a new run."""


def train(task: str, data: str | Path | Any | None, settings: Settings, plan: Plan, *,
          resume: str | Path | None = None, role: WorkerRole | None = None, verbose: int = 1,
          evaluate: bool = True, extra_callbacks: list | None = None,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train a ``task`` model on ``data`` (or continue the run at ``resume``).

    A resumed run keeps its own split, and its own settings except those safe to change mid-run
    (``fisuras.train.resume``: pass ``resumed_settings(run, task, changes)`` and a plan made from
    them); a changed one is recorded in the run, any other refused. ``data``, when given with
    ``resume``, must be the run's own dataset. A finished run trains nothing more unless its
    epoch count was raised. ``data`` may also be a ``fisuras.data.Manifest``: a split made by
    the caller.

    Example:
        >>> settings = load_settings(overrides={"detect.backbone": "small_cnn"})  # doctest: +SKIP
        >>> train("detect", "data/SDNET2018", settings, configure(settings).plan)  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf

    from fisuras.data import Manifest
    from fisuras.hardware.apply import precision_policy
    from fisuras.train.engine import Engine
    from fisuras.train.finish import finish_run
    from fisuras.train.resume import keep_fallbacks, record_plan, settle_resume

    role = role or WorkerRole()
    job = get_task(task)
    log = log or (lambda message: print(message, file=sys.stderr))
    plan = job.training_plan(plan)
    worker_dir = role.worker_dir
    if not role.is_writer:  # non-chief workers never write the run folder
        import tempfile

        worker_dir = Path(worker_dir or tempfile.mkdtemp(prefix="fisuras-worker-"))
    if resume is not None:
        run = RunFolder.open(resume, task)
        if settle_resume(run, task, data, settings, log, role.is_writer):
            return TrainResult(run=run, state=run.read_state(), history=run.read_history(),
                               metrics=run.read_json("metrics.json")
                               if run.file("metrics.json").is_file() else {})
        plan = keep_fallbacks(plan, run)
    else:
        settings, notes = adopt_shipped_weights(settings, task)  # before settings.yaml is written
        for note in notes:
            log(note)
    # The seed fixes the weight initialisation too (Python, NumPy and TF generators), so two
    # runs of one configuration start alike; ops may still differ in their last bits.
    keras.utils.set_random_seed(settings.seed)
    # Build first: missing ImageNet weights must fail before minutes of data scanning.
    spec = job.spec(settings)
    strategy = role.strategy or tf.distribute.get_strategy()
    with strategy.scope(), precision_policy(plan.precision):
        model = spec.build_model()
    if resume is not None:
        manifest = Manifest.load(run.file("manifest.json"))
    else:
        if data is None:
            raise MissingDataError("a dataset path is needed unless resuming a run")
        # A Manifest is a split the caller made (a shipped model's recipe splits by photo).
        manifest, report = ((data, None) if isinstance(data, Manifest)
                            else prepare_data(task, data, settings))
        if role.on_manifest is not None:
            role.on_manifest(manifest)
        runs_dir = settings.runs_dir if role.is_writer else Path(worker_dir) / "runs"
        run = RunFolder.create(runs_dir, task, settings.run_name)
        run.write_text("settings.yaml", settings.to_yaml())
        if report is not None:
            run.write_json("data_report.json", report.to_dict())
            if skipped := report.skipped_line(run.file("data_report.json")):
                log(skipped)  # "left out N bad file(s) (--skip-bad); list in data_report.json"
        manifest.save(run.file("manifest.json"))
        run.write_state(RunState(task=task, batch_size=plan.batch_size))
        log(manifest.summary())
    train_data, val_data = dataset_factories(
        task, manifest, settings, plan, run,
        cache_root=run.path if role.is_writer else worker_dir)
    if plan.workers > 1:
        log(describe_sharding(manifest, plan))
    if role.is_writer:
        record_plan(run, plan, describe_sharding(manifest, plan), resume is not None, log)
    engine = Engine(spec, plan, run, strategy=role.strategy, is_writer=role.is_writer,
                    model=model, extra_callbacks=extra_callbacks, verbose=verbose, log=log)
    try:
        fitted = engine.fit(train_data, val_data, class_weight=job.class_weight(manifest),
                            resume=resume is not None)
    except KeyboardInterrupt:
        raise TrainingInterrupted(run.path, task) from None
    result = TrainResult(run=run, state=fitted.state, history=fitted.history,
                         compile_seconds=fitted.compile_seconds)
    if role.is_writer:
        result.metrics = finish_run(run, engine.model, manifest, task, settings,
                                    evaluate=evaluate)
    return result


def prepare_data(task: str, data: str | Path, settings: Settings):
    """Read, check and split: stops on bad files unless ``settings.skip_bad``."""
    from fisuras.data import apply_check, check_dataset, read_dataset, split_dataset

    description = read_dataset(data, task=task)
    # TensorFlow decodes during training, and rejects some JPEGs Pillow accepts: check with it.
    report = check_dataset(description, verify_with_tensorflow=True)
    description = apply_check(description, report, settings.skip_bad)
    manifest = split_dataset(description, seed=settings.seed, val=settings.val_fraction,
                             test=settings.test_fraction, keys=report.content_keys)
    return manifest, report


def dataset_factories(task: str, manifest, settings: Settings, plan: Plan, run: RunFolder, *,
                      cache_root: str | Path | None = None):
    """Functions batch size (per replica) -> tf.data.Dataset of global batches, train and val.

    With several workers each split is sharded by file or by data (``choose_sharding``, decided
    again for each batch size: the out-of-memory back-off changes the global batch).
    """
    from fisuras.data import make_dataset
    from fisuras.data.sharding import choose_sharding

    job = get_task(task)
    common = dict(task=task, image_size=job.image_size(settings), **job.input_options(settings),
                  cache=settings.cache, cache_budget_bytes=plan.cache_budget_bytes,
                  deterministic=settings.deterministic, seed=settings.seed,
                  prefetch=None if plan.prefetch < 0 else plan.prefetch)
    cache_root = Path(cache_root or run.path)
    # A file-sharded worker caches only its shard: the folder names the cluster size.
    shards = f"-of-{plan.workers}-workers" if plan.workers > 1 else ""

    def split_data(split: str, batch_size: int, training: bool):
        samples = manifest[split]
        global_batch = batch_size * plan.replicas
        sharding = choose_sharding(len(samples), plan.workers, global_batch)
        drop = False
        if plan.replicas > 1 and plan.workers == 1:
            # Keras 3 under MirroredStrategy fails on a last batch that splits unevenly between
            # replicas (AddN of unequal shapes, keras-team/keras#19246): drop it (training
            # shuffles other images there next epoch; validation leaves fewer than one batch
            # out), on a split smaller than one global batch too, at a batch it can fill.
            # Several workers shard the files themselves (``choose_sharding``): not changed.
            drop = True
            global_batch = min(global_batch, len(samples) // plan.replicas * plan.replicas)
        return make_dataset(samples, batch_size=global_batch, training=training,
                            augment=settings.augment and training, drop_remainder=drop,
                            cache_dir=str(cache_root / "cache" / f"{split}{shards}"),
                            shard_policy=sharding.policy, num_workers=plan.workers, **common)

    def train_data(batch_size: int):
        return split_data("train", batch_size, True)

    def val_data(batch_size: int):
        return split_data("val", batch_size, False)

    return train_data, (val_data if manifest["val"] else None)


def describe_sharding(manifest, plan: Plan) -> str:
    """One line per split: how its input is divided between the workers, and why."""
    from fisuras.data.sharding import choose_sharding

    return "; ".join(
        f"{split}: " + choose_sharding(len(manifest[split]), plan.workers,
                                       plan.global_batch_size).reason
        for split in ("train", "val") if manifest[split])
