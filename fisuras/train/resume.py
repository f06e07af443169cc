"""What a resumed run may change: its own settings, with the few safe to change mid-run applied.

A run resumes with the settings it was trained with (``settings.yaml`` in its folder), so the
plan, the batch, the learning-rate scale and the split are the ones it started with. A few
settings are safe to change between two epochs (``SAFE_ON_RESUME``: the learning rates, the
epoch count, evaluation and memory knobs); a changed one is applied and recorded. Any other is
refused with a message naming it: a half-trained model cannot switch backbone, image size,
batch or precision mid-run.

Example:
    >>> settings = resumed_settings("runs/detect/r1", "detect",     # doctest: +SKIP
    ...                             {"detect.learning_rate": 5e-4})
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fisuras.config import Settings, SettingsError, dotted, validate_settings
from fisuras.errors import FisurasError
from fisuras.hardware.plan import Plan
from fisuras.runs import RunFolder
from fisuras.tasks import get_task

SAFE_ON_RESUME = frozenset({
    "detect.learning_rate", "detect.fine_tune_learning_rate", "detect.epochs",
    "segment.learning_rate", "segment.epochs", "segment.tolerance_px", "cache",
    "gpu.enable_memory_growth", "gpu.memory_limit_mb",
})


class ResumeError(FisurasError, ValueError):
    """A resume asks for something the run cannot do (another dataset...)."""


def changes_on_resume(saved: Settings, settings: Settings, task: str,
                      epochs_done: int) -> list[str]:
    """One line per setting that differs from the run's own; refuses the unsafe ones.

    Raises:
        SettingsError: naming every changed setting that is not safe mid-run, or an epoch count
            below the epochs already trained.

    Example:
        >>> changes_on_resume(Settings(), Settings(detect={"learning_rate": 5e-4}), "detect", 3)
        ['detect.learning_rate: 0.001 -> 0.0005']
    """
    before, after = dotted(saved.to_dict()), dotted(settings.to_dict())
    changed = [key for key in after if before.get(key) != after[key]]
    refused = [key for key in changed if key not in SAFE_ON_RESUME]
    if refused:
        listed = ", ".join(f"{key} ({before.get(key)!r} -> {after[key]!r})" for key in refused)
        raise SettingsError(
            f"a resumed run keeps its own settings; cannot change {listed}. Allowed on resume: "
            f"{', '.join(sorted(SAFE_ON_RESUME))}. To train with other settings, start a new "
            "run.")
    epochs_key = get_task(task).key("epochs")
    if after[epochs_key] < epochs_done:
        raise SettingsError(f"{epochs_key}={after[epochs_key]}: the run has already trained "
                            f"{epochs_done} epochs; allowed on resume: {epochs_done} or more")
    return [f"{key}: {before.get(key)!r} -> {after[key]!r}" for key in changed]


def resumed_settings(run: str | Path, task: str,
                     requested: dict[str, Any] | None = None) -> Settings:
    """The run's saved settings with ``requested`` (dotted keys) applied on top.

    Only the settings in ``SAFE_ON_RESUME`` may differ from the run's; ``train`` checks it and
    records the change.
    """
    folder = RunFolder.open(run, task)
    saved = validate_settings(folder.read_yaml("settings.yaml"), str(folder.file("settings.yaml")))
    settings = saved.updated(requested or {})
    changes_on_resume(saved, settings, task, folder.read_state().epoch)
    return settings


def settle_resume(run: RunFolder, task: str, data, settings: Settings,
                  log: Callable[[str], None], is_writer: bool) -> bool:
    """Check what a resume asks for against the run and record it; True if nothing to train."""
    from fisuras.data import Manifest

    saved = validate_settings(run.read_yaml("settings.yaml"), str(run.file("settings.yaml")))
    state = run.read_state()
    changes = changes_on_resume(saved, settings, task, state.epoch)
    if data is not None:
        root = Manifest.load(run.file("manifest.json")).root
        if root and Path(data).resolve() != Path(root).resolve():
            raise ResumeError(f"{data}: not the data of {run.path} ({root}); a resumed run keeps "
                             "its own split: drop DATA, or start a new run")
    # metrics.json is the last file a finished run writes: without it, a kill cut the finish
    # (model, threshold, figures) short, and the resume does that part again.
    finished = state.finished and run.file("metrics.json").is_file()
    if finished and get_task(task).section(settings).epochs <= state.epoch:
        log(f"{run.path} has finished its {state.epoch} epochs: nothing to resume (raise "
            f"--epochs to train on); its results are in {run.file('metrics.json')}")
        return True
    if changes and is_writer:
        for change in changes:
            log(f"resume changes {change}")
        state.events += [f"resumed with {change}" for change in changes]
        state.finished = False
        run.write_state(state)
        run.write_text("settings.yaml", settings.to_yaml())
    return False


# What a plan decides for training (free memory, and so the cache budget, varies by the minute).
PLAN_DECISIONS = ("device", "precision", "xla", "batch_size", "steps_per_execution", "strategy",
                  "replicas", "workers", "learning_rate_scale", "segment_batch_size")


def keep_fallbacks(plan: Plan, run: RunFolder) -> Plan:
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


def record_plan(run: RunFolder, plan: Plan, sharding: str, resumed: bool,
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
