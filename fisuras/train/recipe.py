"""Train a shipped model again from its recipe, evaluate it per set, and install it.

``fisuras models train crack-seg-s --zoo ../shared/zoo`` runs :func:`train_recipe`: the recipe's
training sets split by source photo (crops of one photo never on both sides), the recipe's
settings, the usual run folder (so ``--resume`` continues a stopped run), then per-set figures on
the recipe's report sets beside the no-learning floor, and the model and its card copied into
the package when it fits ``MAX_MODEL_BYTES``, with its ``model.onnx`` (for ONNX Runtime) when
tf2onnx is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fisuras import __version__
from fisuras.config import Settings, dotted
from fisuras.files import atomic_write, atomic_write_text
from fisuras.shipped import (
    HERE,
    MAX_MODEL_BYTES,
    RECIPES,
    ShippedModelError,
    shipped_model_folder,
)


@dataclass(frozen=True)
class Recipe:
    """A shipped model's recipe file, as data."""

    name: str
    task: str
    summary: str
    train_sets: list[str]
    report_sets: list[str]
    licence: str
    settings: dict[str, Any] = field(default_factory=dict)
    validation_fraction: float = 0.1
    test_fraction: float = 0.0
    notes: list[str] = field(default_factory=list)  # for the card: what a reader must know

    @classmethod
    def load(cls, name: str) -> Recipe:
        if name not in RECIPES:
            raise ShippedModelError(f"no recipe called {name!r}; recipes: {', '.join(RECIPES)}")
        return cls(**yaml.safe_load(RECIPES[name].read_text(encoding="utf-8")))

    def resolved_settings(self, runs_dir: str | Path) -> Settings:
        return Settings().updated({**dotted(self.settings), "runs_dir": str(runs_dir),
                                   "run_name": self.name})


def source_photo(path: str | Path) -> str:
    """The source photo a crop comes from: its name before the last ``-N``.

    Example:
        >>> source_photo("images/11111-10.jpg"), source_photo("a/CFD_001.jpg")
        ('11111', 'CFD_001')
    """
    stem = Path(path).stem
    return re.sub(r"-\d+$", "", stem)


def recipe_manifest(recipe: Recipe, zoo: Path, *, check: bool = True, seed: int = 7):
    """The recipe's training sets, checked and split into train/val(/test) by source photo."""
    from fisuras.data import apply_check, check_dataset, read_dataset, split_dataset

    described = [read_dataset(zoo / name, task=recipe.task) for name in recipe.train_sets]
    samples = [sample for desc in described for sample in desc.samples]
    description = described[0].with_samples(samples)
    if check:
        report = check_dataset(description, verify_with_tensorflow=True)
        description = apply_check(description, report, skip_bad=False)
    # Crops of one photo share its key, so a photo is never on both sides of the split.
    keys = {s.image: f"{Path(s.image).parent.parent.name}/{source_photo(s.image)}"
            for s in description.samples} if recipe.task == "segment" else None
    return split_dataset(description, seed=seed, val=recipe.validation_fraction,
                         test=recipe.test_fraction, keys=keys)


def train_recipe(name: str, zoo: str | Path, *, runs_dir: str | Path = "runs/shipped",
                 resume: bool = False, install: bool = True, verbose: int = 2,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train (or resume) the shipped model ``name`` on ``zoo``, evaluate it, install it.

    Returns the card written next to the installed model: recipe, data, figures per set, size,
    training time, the fisuras version.
    """
    from fisuras import hardware
    from fisuras.train import resumed_settings, train
    from fisuras.train.finish import evaluate_run
    from fisuras.train.resume import SAFE_ON_RESUME

    log = log or (lambda message: print(message, file=sys.stderr))
    recipe, zoo = Recipe.load(name), Path(zoo)
    run_path = Path(runs_dir) / recipe.task / name
    started = time.time()
    if resume and (run_path / "state.json").is_file():
        # The recipe stays the truth for what may change mid-run (epochs, learning rates): a
        # recipe edited since the stop is followed; anything else keeps the run's own value.
        followed = {key: value for key, value in dotted(recipe.settings).items()
                    if key in SAFE_ON_RESUME}
        settings = resumed_settings(run_path, recipe.task, followed)
        plan = hardware.configure(settings).plan
        result = train(recipe.task, None, settings, plan, resume=run_path, log=log,
                       verbose=verbose)
    else:
        if run_path.exists():
            raise ShippedModelError(f"{run_path} exists: add --resume to continue it, or move "
                                    "it away to start again")
        settings = recipe.resolved_settings(runs_dir)
        plan = hardware.configure(settings).plan
        manifest = recipe_manifest(recipe, zoo, seed=settings.seed)  # the recipe's own seed
        result = train(recipe.task, manifest, settings, plan, log=log, verbose=verbose)
    figures = {"validation_threshold": result.metrics.get("threshold")}
    if result.metrics.get("test"):
        figures["held_out_test_split"] = result.metrics["test"]
    for report_set in recipe.report_sets:
        evaluated = evaluate_run(result.run.path, zoo / report_set, settings)
        figures[report_set] = {"model": evaluated["figures"], "floor": evaluated.get("floor")}
    card = {
        "name": name, "task": recipe.task, "summary": recipe.summary, "licence": recipe.licence,
        "recipe": f"fisuras/shipped/recipes/{name}.yaml", "training_sets": recipe.train_sets,
        "report_sets": recipe.report_sets, "notes": recipe.notes, "figures": figures,
        "fisuras_version": __version__,
        "trained": time.strftime("%Y-%m-%d"), "run": str(result.run.path),
        "epochs": result.state.epoch,
        "this_call_seconds": round(time.time() - started),
    }
    if install:
        install_model(name, result.run.path, card, log=log)
    return card


def install_model(name: str, run_folder: Path, card: dict[str, Any],
                  log: Callable[[str], None] | None = None) -> Path:
    """Install a trained model, its model card and the shipped card into the package.

    The installed folder has a run folder's shape (``model.keras``, ``model_card.json``), so
    everything that loads a run loads it; ``shipped.json`` adds the recipe, data and figures.
    The model is saved without its optimizer (a run's ``model.keras`` keeps it for resuming:
    Adam's two moments triple the file), and refused above ``MAX_MODEL_BYTES``. Then
    :func:`export_onnx` adds ``model.onnx`` when it can.
    """
    from fisuras.models.saving import load_keras_model

    target = HERE / "models" / name
    model = load_keras_model(run_folder / "model.keras", compile=False)  # weights only
    with tempfile.TemporaryDirectory(prefix=".install-", dir=run_folder) as work:
        stripped = Path(work) / "model.keras"
        model.save(stripped)
        size = stripped.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ShippedModelError(f"{run_folder / 'model.keras'}: {size / 2**20:.1f} MB without "
                                    f"its optimizer, more than the {MAX_MODEL_BYTES / 2**20:.0f} "
                                    "MB a shipped model may weigh")
        atomic_write(target / "model.keras", lambda tmp: shutil.copyfile(stripped, tmp))
    atomic_write(target / "model_card.json",
                 lambda tmp: shutil.copyfile(run_folder / "model_card.json", tmp))
    card = {**card, "size_bytes": size}
    atomic_write_text(target / "shipped.json", json.dumps(card, indent=2, default=str))
    export_onnx(name, log=log)
    return target


def export_onnx(name: str, log: Callable[[str], None] | None = None) -> Path | None:
    """Write ``model.onnx`` beside the installed shipped model ``name``, checked against Keras.

    Without tf2onnx/onnxruntime, or when the export does not match Keras, only a note: the Keras
    model is installed either way, and predict's ``auto`` runtime then stays on Keras (an ONNX
    file left from an earlier model is removed, so none can pass for the new one).
    """
    from fisuras.infer.export import ExportMismatchError
    from fisuras.infer.runners import ExportDependencyError
    from fisuras.infer.runtime import export_onnx as export_beside

    log = log or (lambda message: print(message, file=sys.stderr))
    model_file = shipped_model_folder(name) / "model.keras"
    try:
        result = export_beside(model_file)
    except (ExportDependencyError, ExportMismatchError) as error:
        model_file.with_suffix(".onnx").unlink(missing_ok=True)
        log(f"{name}: no model.onnx shipped ({error}); predict runs it with Keras")
        return None
    log(f"{name}: wrote {result.path} ({result.path.stat().st_size / 2**20:.1f} MB, checked "
        f"against Keras: max diff {result.max_abs_diff:.2g})")
    return result.path
