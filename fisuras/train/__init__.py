"""Training: one engine for detection and segmentation, driven by settings and a hardware plan.

``train`` is the whole job: read and check the data, split it, build the model, fit the phases,
keep the best weights, choose the decision threshold on validation and evaluate on the test split.

Example:
    >>> from fisuras import hardware
    >>> from fisuras.config import load_settings
    >>> settings = load_settings(overrides={"backbone_detect": "small_cnn", "weights": "none"})
    >>> plan = hardware.configure(settings).plan                      # doctest: +SKIP
    >>> result = train("detect", "data/SDNET2018", settings, plan)    # doctest: +SKIP
    >>> result.run.path                                               # doctest: +SKIP
    PosixPath('runs/detect/20261128-101500')
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fisuras.config import Settings
from fisuras.hardware.plan import Plan
from fisuras.train.run import RunFolder, RunFolderError, RunState

__all__ = ["RunFolder", "RunFolderError", "TrainResult", "train", "image_size_for"]


@dataclass
class TrainResult:
    """Where the run is and what it measured."""

    run: RunFolder
    state: RunState
    history: list[dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)
    compile_seconds: float | None = None


def image_size_for(task: str, settings: Settings) -> int:
    return settings.image_size_detect if task == "detect" else settings.image_size_segment


def train(task: str, data: str | Path | None, settings: Settings, plan: Plan, *,
          resume: str | Path | None = None, verbose: int = 1, evaluate: bool = True,
          strategy=None, is_writer: bool = True, extra_callbacks: list | None = None,
          log: Callable[[str], None] | None = None, worker_dir: str | Path | None = None,
          on_manifest: Callable[[Any], None] | None = None) -> TrainResult:
    """Train a ``task`` model on ``data`` (or continue the run at ``resume``).

    A resumed run keeps its own settings and split (from its folder); ``data`` is then ignored.
    Distributed runs (``fisuras.distribute``): only the writer (the chief) writes the run folder;
    another worker keeps its own files in ``worker_dir`` (default: a new temporary folder) and
    reads the chief's run folder on resume. ``on_manifest`` sees a new run's split before
    training (the workers check there that they all split alike).
    """
    import keras
    import tensorflow as tf

    from fisuras.data import Manifest
    from fisuras.hardware.apply import precision_policy
    from fisuras.train.engine import Engine
    from fisuras.train.tasks import task_spec

    log = log or (lambda message: print(message, file=sys.stderr))
    if task == "segment":
        plan = plan.for_segmentation()  # U-Net crops have their own batch and rate scale
    if not is_writer:  # issue 8: non-chief workers never write the run folder
        import tempfile

        worker_dir = Path(worker_dir or tempfile.mkdtemp(prefix="fisuras-worker-"))
    if resume is not None:
        run = RunFolder.open(resume, task)
        settings = Settings.model_validate(run.read_yaml("settings.yaml"))
    # The seed fixes the weight initialisation too (Python, NumPy and TF generators), so two
    # runs of one configuration start alike; ops may still differ in their last bits.
    keras.utils.set_random_seed(settings.seed)
    # Build first: missing ImageNet weights must fail before minutes of data scanning.
    spec = task_spec(task, settings)
    with (strategy or tf.distribute.get_strategy()).scope(), precision_policy(plan.precision):
        model = spec.build_model()
    if resume is not None:
        manifest = Manifest.load(run.file("manifest.json"))
    else:
        if data is None:
            raise ValueError("a dataset path is needed unless resuming a run")
        manifest, report = prepare_data(task, data, settings)
        if on_manifest is not None:
            on_manifest(manifest)
        runs_dir = settings.runs_dir if is_writer else Path(worker_dir) / "runs"
        run = RunFolder.create(runs_dir, task, settings.run_name)
        run.write_text("settings.yaml", settings.to_yaml())
        run.write_json("data_report.json", report.to_dict())
        manifest.save(run.file("manifest.json"))
        run.write_state(RunState(task=task, batch_size=plan.batch_size))
        log(manifest.summary())
    train_data, val_data = dataset_factories(task, manifest, settings, plan, run,
                                             cache_root=run.path if is_writer else worker_dir)
    if plan.workers > 1:
        log(describe_sharding(manifest, plan))
    if is_writer:
        run.write_json("plan.json", {**plan.to_dict(),
                                     "input_sharding": describe_sharding(manifest, plan)})
    class_weight = manifest.class_weights("train") if task == "detect" else None
    engine = Engine(spec, plan, run, strategy=strategy, is_writer=is_writer, model=model,
                    extra_callbacks=extra_callbacks, verbose=verbose, log=log)
    fitted = engine.fit(train_data, val_data, class_weight=class_weight,
                        resume=resume is not None)
    result = TrainResult(run=run, state=fitted.state, history=fitted.history,
                         compile_seconds=fitted.compile_seconds)
    if is_writer:
        from fisuras.evaluate.run import finish_run

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
    from fisuras.distribute.sharding import choose_sharding

    segment = dict(crops_by_area=settings.crops_per_photo_segment == "area",
                   min_steps=settings.min_steps_per_epoch_segment,
                   scale_jitter=settings.scale_jitter_segment) if task == "segment" else {}
    common = dict(task=task, image_size=image_size_for(task, settings), **segment,
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
    from fisuras.distribute.sharding import choose_sharding

    return "; ".join(
        f"{split}: " + choose_sharding(len(manifest[split]), plan.workers,
                                       plan.global_batch_size).reason
        for split in ("train", "val") if manifest[split])
