"""Finish a training run: best weights, model card with the validation threshold, test figures.

Writes ``model.keras``, ``model_card.json``, ``metrics.json`` and ``plots/`` in the run folder;
the figures come from the task's evaluator (``fisuras.tasks``), the same one ``fisuras evaluate``
uses.
"""

from __future__ import annotations

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
