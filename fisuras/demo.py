"""``make demo``: synthetic cracks in, a detector and a segmenter trained, real cracks evaluated.

The recipe is sized for the machine found (a pure function of the plan): small models for
minutes on a CPU, the turbo backbones on a GPU. Real samples (``../shared/data``: METU patches,
CFD, DeepCrack and CRACK500 pairs) are evaluated when present; nothing real is trained on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fisuras.config import Settings
from fisuras.hardware.plan import Plan

REAL_DETECTION_SETS = ("cls_metu",)
REAL_SEGMENTATION_SETS = ("seg_cfd", "seg_deepcrack", "seg_crack500")


@dataclass(frozen=True)
class DemoRecipe:
    """How big the demo is on this machine."""

    images_per_class_per_surface: int
    segmentation_pairs: int
    detect: dict[str, Any]
    segment: dict[str, Any]
    reason: str


def demo_recipe(plan: Plan) -> DemoRecipe:
    """Pure: small CPU models for a run of minutes, the turbo backbones on a GPU.

    Example:
        >>> from fisuras.config import Settings
        >>> from fisuras.hardware import HardwareFacts, make_plan
        >>> demo_recipe(make_plan(HardwareFacts(cpu_cores=2), Settings())).detect["detect.backbone"]
        'small_cnn'
    """
    if plan.device == "gpu":
        return DemoRecipe(
            images_per_class_per_surface=400, segmentation_pairs=300,
            detect={"detect.backbone": "mobilenet_v2", "detect.image_size": 224,
                    "detect.epochs": 8, "detect.frozen_epochs": 3},
            segment={"segment.backbone": "mobilenet_v2", "segment.image_size": 256,
                     "segment.epochs": 10},
            reason="GPU found: the turbo backbones at full size, few epochs")
    return DemoRecipe(
        images_per_class_per_surface=150, segmentation_pairs=160,
        detect={"detect.backbone": "small_cnn", "detect.image_size": 96, "detect.epochs": 8,
                "detect.frozen_epochs": 0, "detect.batch_size": 32, "weights": "none"},
        segment={"segment.backbone": "unet_light", "segment.image_size": 128,
                 "segment.epochs": 3, "segment.batch_size": 8, "weights": "none"},
        reason="CPU only: small models at reduced size so the demo takes minutes")


@dataclass
class DemoResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)
    shipped: str | None = None  # what the shipped models found on a real photo, and where

    def table(self) -> str:
        from fisuras.files import format_table

        columns = ["task", "evaluated on", "n", "f1", "precision", "recall", "roc_auc",
                   "iou", "tolerance_f1", "ods"]
        used = [c for c in columns if any(c in row for row in self.rows)]
        return format_table(self.rows, used)


def run_demo(settings: Settings, plan: Plan, *, workdir: str | Path = "demo_data",
             shared_data: str | Path | None = None, seed: int = 0,
             log: Callable[[str], None] | None = None) -> DemoResult:
    """Synthesize data, train both tasks, evaluate on held-back synthetic and real samples."""
    from fisuras.data import synthesize
    from fisuras.hardware import detect_facts, make_plan
    from fisuras.train import train
    from fisuras.train.finish import evaluate_run

    log = log or (lambda message: print(message, file=sys.stderr))
    recipe = demo_recipe(plan)
    log(f"demo: {recipe.reason}")
    summary = synthesize(workdir, n_per_class_per_surface=recipe.images_per_class_per_surface,
                         n_seg=recipe.segmentation_pairs, seed=seed, workers=2)
    log(summary.to_text())
    real = Path(shared_data) if shared_data else None
    result = DemoResult()
    for task, data, overrides, real_sets in (
            ("detect", summary.sdnet_dir, recipe.detect, REAL_DETECTION_SETS),
            ("segment", summary.seg_dir, recipe.segment, REAL_SEGMENTATION_SETS)):
        task_settings = settings.updated({**overrides, "run_name": f"demo-{task}"})
        # The plan's rules again with the demo's sizes (batches depend on them); pure.
        task_plan = make_plan(detect_facts(), task_settings, replicas=plan.replicas)
        trained = train(task, data, task_settings, task_plan, verbose=2, log=log)
        result.runs[task] = str(trained.run.path)
        result.rows += _rows(task, "synthetic (held-back test split)", trained.metrics["test"],
                             trained.metrics.get("floor"))
        for name in real_sets:
            if real is not None and (real / name).is_dir():
                evaluated = evaluate_run(trained.run.path, real / name, task_settings)
                result.rows += _rows(task, f"real: {name}", evaluated["figures"],
                                     evaluated.get("floor"))
    if real is not None:
        result.shipped = predict_with_shipped(real, Path(workdir) / "shipped_predictions", log)
    return result


def predict_with_shipped(real: Path, out_dir: Path,
                         log: Callable[[str], None]) -> str | None:
    """``fisuras predict``'s default (the shipped models, no training) on one real photo.

    The photo is a CrackForest one: a dataset none of the shipped models was trained on.
    Returns where the overlay and the crack geometry went, or None when the default models are
    not installed (said through ``log``) or the photos are missing.
    """
    from fisuras.infer.loading import choose_models
    from fisuras.infer.predict import predict_paths
    from fisuras.shipped import ShippedModelError

    photos = sorted((real / "seg_cfd" / "images").glob("*")) if real.is_dir() else []
    if not photos:
        return None
    try:
        models = choose_models(log=log)
    except ShippedModelError as error:
        log(f"demo: {error}")
        return None
    report = predict_paths([str(photos[0])], detector=models.get("detect"),
                           segmenter=models.get("segment"), out_dir=out_dir, progress=False)
    row = report.rows[0]
    names = ", ".join(loaded.path.parent.name for loaded in models.values())
    found = (f"{row['crack_count']} crack(s), {row['total_length_px']:.0f} px long in all, "
             f"widest {row['max_width_px']:.1f} px" if "crack_count" in row
             else f"verdict {row.get('verdict', row['status'])}")
    written = ", ".join(str(out_dir / row[key]) for key in ("overlay_png", "mask_png",
                                                           "heatmap_png") if row.get(key))
    return (f"shipped models ({names}) on {photos[0]}: {found}; wrote {written}; crack "
            f"geometry in {report.json_path}")


def _rows(task: str, source: str, figures: dict[str, Any],
          floor: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Detection: the 'overall' line; segmentation: one line per dataset folder, each followed
    by the no-learning floor's line on the same photos (``floor``, from the metrics)."""
    if task == "detect":
        overall = figures["overall"]
        return [{"task": task, "evaluated on": source, **_pick(overall, ("n", "f1", "precision",
                                                                          "recall", "roc_auc"))}]
    rows = []
    for group, values in figures.items():
        if group == "all_groups_pooled":
            continue
        where = source if len(figures) == 1 else f"{source} [{group}]"
        rows.append({"task": task, "evaluated on": where,
                     **_pick(values, ("n_images", "iou", "tolerance_f1", "ods"))})
        if floor and group in floor["figures"]:
            rows.append({"task": "floor (no learning)", "evaluated on": where,
                         **_pick(floor["figures"][group], ("n_images", "iou", "tolerance_f1",
                                                           "ods"))})
    return rows


def _pick(figures: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    picked = {key: figures.get(key) for key in keys}
    if "n_images" in picked:
        picked["n"] = picked.pop("n_images")
    return picked
