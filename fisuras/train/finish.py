"""Finish a training run (best weights, model card with the validation threshold, test figures),
and evaluate a finished run again (``evaluate_run``: ``fisuras evaluate``).

Writes ``model.keras``, ``model_card.json``, ``metrics.json`` and ``plots/`` in the run folder;
the figures come from the task's evaluator (``fisuras.tasks``), the same one ``fisuras evaluate``
uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fisuras import __version__
from fisuras.config import Settings
from fisuras.evaluate import plots
from fisuras.files import atomic_write
from fisuras.models.card import ModelCard
from fisuras.runs import RunFolder
from fisuras.tasks import get_task


def finish_run(run: RunFolder, model, manifest, task: str, settings: Settings, *,
               evaluate: bool = True) -> dict[str, Any]:
    """Best weights into ``model.keras``, threshold on validation, figures on the test split.

    The metrics (also written to ``metrics.json``) hold ``task, run, threshold``,
    ``threshold_source`` (with a validation split), ``test`` (figures per group) and, for a task
    with a no-learning baseline (segmentation), ``floor``: its figures on the same samples.
    """
    import keras

    job = get_task(task)
    if run.best_checkpoint.is_file():
        best = keras.models.load_model(run.best_checkpoint, compile=False, safe_mode=True)
        model.set_weights(best.get_weights())
    atomic_write(run.file("model.keras"), lambda tmp: model.save(tmp))
    section = job.section(settings)
    card = ModelCard(task=task, backbone=section.backbone, image_size=section.image_size,
                     weights=str(settings.weights), fisuras_version=__version__)
    history = run.read_history()
    if history:
        plots.plot_history(
            {k: [row.get(k) for row in history] for k in history[0] if k not in ("phase",)},
            run.file("plots/history.png"))
    metrics: dict[str, Any] = {"task": task, "run": str(run.path)}
    if manifest["val"]:
        card.threshold = job.choose_threshold(model, manifest["val"], settings)
        metrics["threshold_source"] = job.threshold_source
    card.save(run.path)
    metrics["threshold"] = card.threshold
    if evaluate and manifest["test"]:
        metrics["test"] = job.evaluate(model, card, manifest["test"], settings,
                                       plots_dir=run.file("plots"))
        if (floor := job.floor(manifest["test"], settings)) is not None:
            metrics["floor"] = floor  # did learning pay, on the same test photos?
    run.write_json("metrics.json", metrics)
    return metrics


def evaluate_run(
    run_path: str | Path, data: str | Path | None, settings: Settings, *, split: str = "test"
) -> dict[str, Any]:
    """Re-evaluate a saved run on its own ``split``, or on every image of another dataset.

    Returns (and writes to ``metrics_<name>.json``) ``source``, ``threshold`` and ``figures``;
    a segmenter's result also holds ``floor``: the no-learning filter's figures on the same
    samples (see :func:`fisuras.evaluate.floor.floor_entry`).
    """
    from fisuras.data import Manifest, read_dataset
    from fisuras.infer.loading import load_model
    from fisuras.runs import RunFolder, RunFolderError
    from fisuras.tasks import get_task

    run = RunFolder(Path(run_path))
    loaded = load_model(run.path)
    if data is None:
        samples = Manifest.load(run.file("manifest.json"))[split]
        source = f"{split} split of {run.path}"
        if not samples:
            raise RunFolderError(f"{run.path}: its {split} split is empty, nothing to evaluate; "
                                 "choose another --split, or give a DATA folder")
    else:
        samples = read_dataset(data, task=loaded.card.task).samples
        source = str(data)
    job = get_task(loaded.card.task)
    result = {
        "source": source,
        "threshold": loaded.card.threshold,
        "figures": job.evaluate(loaded.model, loaded.card, samples, settings),
    }
    if (floor := job.floor(samples, settings)) is not None:
        result["floor"] = floor
    name = "metrics_" + ("test" if data is None else Path(data).name) + ".json"
    run.write_json(name, result)
    return result
