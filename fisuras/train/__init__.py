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
from fisuras.train.resume import resumed_settings
from fisuras.train.run import RunFolder, RunFolderError, RunState

__all__ = ["RunFolder", "RunFolderError", "TrainResult", "TrainingInterrupted", "train",
           "image_size_for", "resumed_settings"]


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

    A resumed run keeps its own split, and its own settings except those safe to change mid-run
    (``fisuras.train.resume``: pass ``resumed_settings(run, task, changes)`` and a plan made from
    them); a changed one is recorded in the run, any other refused. ``data``, when given with
    ``resume``, must be the run's own dataset. A finished run trains nothing more unless its
    epoch count was raised.
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
        finished = _settle_resume(run, task, data, settings, log, is_writer)
        if finished is not None:
            return finished
        plan = _keep_fallbacks(plan, run)
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
        if skipped := report.skipped_line(run.file("data_report.json")):
            log(skipped)  # "left out N bad file(s) (--skip-bad); list in <run>/data_report.json"
        manifest.save(run.file("manifest.json"))
        run.write_state(RunState(task=task, batch_size=plan.batch_size))
        log(manifest.summary())
    train_data, val_data = dataset_factories(task, manifest, settings, plan, run,
                                             cache_root=run.path if is_writer else worker_dir)
    if plan.workers > 1:
        log(describe_sharding(manifest, plan))
    if is_writer:
        _record_plan(run, plan, describe_sharding(manifest, plan), resume is not None, log)
    class_weight = manifest.class_weights("train") if task == "detect" else None
    engine = Engine(spec, plan, run, strategy=strategy, is_writer=is_writer, model=model,
                    extra_callbacks=extra_callbacks, verbose=verbose, log=log)
    try:
        fitted = engine.fit(train_data, val_data, class_weight=class_weight,
                            resume=resume is not None)
    except KeyboardInterrupt:
        raise TrainingInterrupted(run.path, task) from None
    result = TrainResult(run=run, state=fitted.state, history=fitted.history,
                         compile_seconds=fitted.compile_seconds)
    if is_writer:
        from fisuras.evaluate.run import finish_run

        result.metrics = finish_run(run, engine.model, manifest, task, settings,
                                    evaluate=evaluate)
    return result


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the run keeps its last complete epoch and can resume."""

    def __init__(self, run_path: Path, task: str):
        self.run_path, self.task = run_path, task
        super().__init__(f"interrupted: {run_path} keeps its last complete epoch; resume with: "
                         f"fisuras train {task} --resume {run_path}")


def _settle_resume(run: RunFolder, task: str, data, settings: Settings,
                   log: Callable[[str], None], is_writer: bool) -> TrainResult | None:
    """Check what a resume asks for against the run; a finished run's result, if nothing to do."""
    from fisuras.data import Manifest
    from fisuras.train.resume import EPOCHS_KEY, changes_on_resume

    saved = Settings.model_validate(run.read_yaml("settings.yaml"))
    state = run.read_state()
    changes = changes_on_resume(saved, settings, task, state.epoch)
    if data is not None:
        root = Manifest.load(run.file("manifest.json")).root
        if root and Path(data).resolve() != Path(root).resolve():
            raise ValueError(f"{data}: not the data of {run.path} ({root}); a resumed run keeps "
                             "its own split: drop DATA, or start a new run")
    epochs = getattr(settings, EPOCHS_KEY[task])
    if state.finished and epochs <= state.epoch:
        log(f"{run.path} has finished its {state.epoch} epochs: nothing to resume (raise "
            f"--epochs to train on); its results are in {run.file('metrics.json')}")
        metrics = run.read_json("metrics.json") if run.file("metrics.json").is_file() else {}
        return TrainResult(run=run, state=state, history=run.read_history(), metrics=metrics)
    if changes and is_writer:
        for change in changes:
            log(f"resume changes {change}")
        state.events += [f"resumed with {change}" for change in changes]
        state.finished = False
        run.write_state(state)
        run.write_text("settings.yaml", settings.to_yaml())
    return None


# What a plan decides for training (free memory, and so the cache budget, varies by the minute).
PLAN_DECISIONS = ("device", "precision", "xla", "batch_size", "steps_per_execution", "strategy",
                  "replicas", "workers", "learning_rate_scale", "segment_batch_size")


def _keep_fallbacks(plan: Plan, run: RunFolder) -> Plan:
    """A resumed run keeps the optimisations its first attempt had to turn off (plan.json)."""
    from dataclasses import replace

    if not run.file("plan.json").is_file():
        return plan
    recorded = run.read_json("plan.json")
    if not recorded.get("fallbacks"):
        return plan
    precision = "float32" if recorded.get("precision") == "float32" else plan.precision
    return replace(plan, xla=plan.xla and bool(recorded.get("xla")), precision=precision,
                   fallbacks=tuple(recorded["fallbacks"]))


def _record_plan(run: RunFolder, plan: Plan, sharding: str, resumed: bool,
                 log: Callable[[str], None]) -> None:
    """plan.json: the plan a run started with; a resume on other hardware adds its own."""
    planned = {**plan.to_dict(), "input_sharding": sharding}
    if not resumed or not run.file("plan.json").is_file():
        run.write_json("plan.json", planned)
        return
    recorded = run.read_json("plan.json")
    latest = (recorded.get("resumed_with") or [recorded])[-1]
    if any(latest.get(key) != planned[key] for key in PLAN_DECISIONS):
        log("the plan differs from the one this run started with (other hardware?); "
            "both are in plan.json")
        run.write_json("plan.json", {**recorded,
                                     "resumed_with": [*recorded.get("resumed_with", []),
                                                      planned]})


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
