"""What a resumed run may change: its own settings, with the few safe to change mid-run applied.

A run resumes with the settings it was trained with (``settings.yaml`` in its folder), so the
plan, the batch, the learning-rate scale and the split are the ones it started with. A few
settings are safe to change between two epochs (``SAFE_ON_RESUME``: the learning rates, the
epoch count, evaluation and memory knobs); a changed one is applied and recorded. Any other is
refused with a message naming it: a half-trained model cannot switch backbone, image size,
batch or precision mid-run.

Example:
    >>> settings = resumed_settings("runs/detect/r1", "detect",     # doctest: +SKIP
    ...                             {"learning_rate": 5e-4})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fisuras.config import Settings, SettingsError, load_settings

SAFE_ON_RESUME = frozenset({
    "learning_rate", "fine_tune_learning_rate", "epochs_detect", "epochs_segment",
    "tolerance_px", "cache", "gpu.enable_memory_growth", "gpu.memory_limit_mb",
})
EPOCHS_KEY = {"detect": "epochs_detect", "segment": "epochs_segment"}


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"gpu": {"enable_xla": True}}`` -> ``{"gpu.enable_xla": True}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def changes_on_resume(saved: Settings, settings: Settings, task: str,
                      epochs_done: int) -> list[str]:
    """One line per setting that differs from the run's own; refuses the unsafe ones.

    Raises:
        SettingsError: naming every changed setting that is not safe mid-run, or an epoch count
            below the epochs already trained.

    Example:
        >>> changes_on_resume(Settings(), Settings(learning_rate=5e-4), "detect", 3)
        ['learning_rate: 0.001 -> 0.0005']
    """
    before, after = flatten(saved.to_dict()), flatten(settings.to_dict())
    changed = [key for key in after if before.get(key) != after[key]]
    refused = [key for key in changed if key not in SAFE_ON_RESUME]
    if refused:
        listed = ", ".join(f"{key} ({before.get(key)!r} -> {after[key]!r})" for key in refused)
        raise SettingsError(
            f"a resumed run keeps its own settings; cannot change {listed}. Allowed on resume: "
            f"{', '.join(sorted(SAFE_ON_RESUME))}. To train with other settings, start a new "
            "run.")
    epochs = after[EPOCHS_KEY[task]]
    if epochs < epochs_done:
        raise SettingsError(f"{EPOCHS_KEY[task]}={epochs}: the run has already trained "
                            f"{epochs_done} epochs; allowed on resume: {epochs_done} or more")
    return [f"{key}: {before.get(key)!r} -> {after[key]!r}" for key in changed]


def resumed_settings(run: str | Path, task: str,
                     requested: dict[str, Any] | None = None) -> Settings:
    """The run's saved settings with ``requested`` (dotted keys) applied on top.

    Only the settings in ``SAFE_ON_RESUME`` may differ from the run's; ``train`` checks it and
    records the change.
    """
    from fisuras.train.run import RunFolder

    folder = RunFolder.open(run, task)
    saved = Settings.model_validate(folder.read_yaml("settings.yaml"))
    settings = load_settings(overrides={**flatten(saved.to_dict()), **(requested or {})})
    changes_on_resume(saved, settings, task, folder.read_state().epoch)
    return settings
