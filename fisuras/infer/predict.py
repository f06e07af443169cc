"""``fisuras predict``: run a detector, a segmenter or both (cascade) on photos of any size.

Per photo, by the models given:

* **detector only** — overlapping classifier patches (the model's input size, ``tile_overlap``
  apart) give a heat map; the verdict is *cracked* when the highest patch probability reaches the
  card's threshold. Writes ``<name>_heatmap.png``; the JSON row lists the cracked patches.
* **segmenter only** — overlapping, blended tiles (:mod:`fisuras.infer.tiling`) give a crack
  probability map, thresholded at the card's threshold into ``<name>_mask.png`` (0/255) and
  ``<name>_overlay.png``; crack geometry comes from :func:`fisuras.infer.geometry.measure_cracks`.
* **both** — the cascade (:mod:`fisuras.infer.cascade`): the classifier scores each segmenter
  tile and only tiles it calls cracked are segmented; the row says how many.

Each model runs in Keras or in ONNX Runtime on its ``model.onnx`` (``runtime``, see
:mod:`fisuras.infer.runtime`; ``auto`` takes ONNX Runtime only when the file is already there and
up to date); report.json's ``runtime`` says which, and why.

The verdict comes from the detector when there is one, else from the mask (any crack measured).
Unreadable photos become rows with ``status="error"`` and never stop the batch. ``report.csv``
(scalars) and ``report.json`` (everything) are rewritten atomically at the end, also when the run
is interrupted (then ``"complete": false``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import fisuras
from fisuras.data.tiles import TILE_ALIGN, TILE_OVERLAP, segment_grid
from fisuras.errors import FisurasError
from fisuras.files import write_csv, write_json, write_png
from fisuras.infer.cascade import predict_cascade
from fisuras.infer.images import (
    UnreadableImageError,
    expand_inputs,
    heatmap_overlay,
    mask_overlay,
    read_photo,
)
from fisuras.infer.loading import LoadedModel, check_task
from fisuras.infer.outputs import inside, unique_names
from fisuras.infer.runtime import RUNTIMES, PreparedRuntime, prepare_runtime
from fisuras.infer.tiling import patch_heatmap, predict_tiled, tile_stride


class PredictOptionError(FisurasError, ValueError):
    """A prediction option is missing or out of range (models, scale, batch size, overlap)."""

CSV_COLUMNS = [
    "input", "status", "error", "width", "height", "verdict", "max_probability",
    "patches", "cracked_patches", "tiles_total", "tiles_segmented", "crack_pixels",
    "crack_count", "total_length_px", "max_width_px", "total_length_mm", "max_width_mm",
    "wide_cracks", "heatmap_png", "mask_png", "overlay_png", "seconds",
]  # fmt: skip


@dataclass
class PredictReport:
    """Rows (one per input photo or failed input) and where the reports were written."""

    rows: list[dict]
    out_dir: Path
    csv_path: Path
    json_path: Path
    settings: dict = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        return sum(row["status"] != "ok" for row in self.rows)

    @property
    def n_ok(self) -> int:
        return len(self.rows) - self.n_failed


@dataclass
class _Models:
    """What every photo needs, prepared once."""

    detector: LoadedModel | None
    segmenter: LoadedModel | None
    overlap: float
    batch_size: int
    mm_per_px: float | None
    max_width_mm: float
    runtime: str = "auto"
    onnx_threads: int | None = None

    def __post_init__(self) -> None:
        def prepare(loaded: LoadedModel | None) -> PreparedRuntime | None:
            if loaded is None:
                return None
            # stderr: stdout carries the progress lines and the final summary
            return prepare_runtime(loaded, self.runtime, threads=self.onnx_threads,
                                   log=lambda line: print(line, file=sys.stderr, flush=True))

        self.runtimes = {"detector": prepare(self.detector), "segmenter": prepare(self.segmenter)}
        self.detect = self.runtimes["detector"].predict_batch if self.detector else None
        self.segment = self.runtimes["segmenter"].predict_batch if self.segmenter else None


def predict_paths(
    inputs: list[str],
    *,
    detector: LoadedModel | None,
    segmenter: LoadedModel | None,
    out_dir: str | Path,
    tile_overlap: float = TILE_OVERLAP,
    batch_size: int = 8,
    mm_per_px: float | None = None,
    max_width_mm: float = 0.3,
    progress: bool = True,
    runtime: str = "auto",
    onnx_threads: int | None = None,
) -> PredictReport:
    """Predict on files, folders and globs; write PNGs and ``report.csv``/``report.json``.

    ``runtime`` is ``"auto"``, ``"keras"`` or ``"onnx"`` (:mod:`fisuras.infer.runtime`);
    ``onnx_threads`` sets ONNX Runtime's intra-op threads (None: its default).

    Example:
        >>> detector = load_model("runs/detect-001", expect_task="detect")  # doctest: +SKIP
        >>> report = predict_paths(["photos/"], detector=detector, segmenter=None,
        ...                        out_dir="out")  # doctest: +SKIP
        >>> report.n_ok, report.csv_path  # doctest: +SKIP
        (12, PosixPath('out/report.csv'))
    """
    if detector is None and segmenter is None:
        raise PredictOptionError("predict needs a detector, a segmenter, or both")
    if detector is not None:
        check_task(detector.card, "detect", detector.path)
    if segmenter is not None:
        check_task(segmenter.card, "segment", segmenter.path)
    if mm_per_px is not None and mm_per_px <= 0:
        raise PredictOptionError(f"mm_per_px must be positive, got {mm_per_px}")
    if batch_size < 1:
        raise PredictOptionError(f"batch_size must be at least 1, got {batch_size}")
    if not 0.0 <= tile_overlap < 1.0:  # before any file is written
        raise PredictOptionError(f"tile_overlap must be in [0, 1), got {tile_overlap}")
    if runtime not in RUNTIMES:
        raise PredictOptionError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    # Runtimes first: a missing onnxruntime or a failed export leaves no output folder behind.
    models = _Models(detector, segmenter, tile_overlap, batch_size, mm_per_px, max_width_mm,
                     runtime, onnx_threads)
    settings = _settings(models)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    photos, problems = expand_inputs(list(inputs))
    rows = [_error_row(text, reason) for text, reason in problems]
    bar = _progress(len(photos)) if progress and photos else None
    complete = False
    try:
        for photo, name in zip(photos, unique_names(p.stem for p in photos), strict=True):
            rows.append(predict_photo(photo, name, out_dir, models))
            if bar is not None:
                bar(rows[-1])
        complete = True
    finally:
        csv_path = write_csv(inside(out_dir, "report.csv"), rows, CSV_COLUMNS)
        json_path = write_json(
            inside(out_dir, "report.json"),
            {"fisuras_version": fisuras.__version__, "complete": complete, **settings,
             "images": rows},
        )
    return PredictReport(rows, out_dir, csv_path, json_path, settings)


def predict_photo(photo: Path, name: str, out_dir: Path, models: _Models) -> dict:
    """One report row for one photo; an unreadable photo gives an error row instead."""
    started = time.perf_counter()
    row: dict = {"input": str(photo), "status": "ok", "error": None}
    try:
        image = read_photo(photo)
    except UnreadableImageError as error:
        return {**row, "status": "error", "error": str(error)}
    height, width = image.shape[:2]
    row.update(width=width, height=height)

    probability = None
    if models.detector and models.segmenter:
        result = predict_cascade(
            models.detect, models.segment, image,
            tile=models.segmenter.image_size, patch=models.detector.image_size,
            threshold=models.detector.card.threshold, overlap=models.overlap,
            batch_size=models.batch_size, align=TILE_ALIGN,
        )  # fmt: skip
        probability = result.probability
        row.update(tiles_total=result.tiles_total, tiles_segmented=result.tiles_segmented)
        row.update(_heat_fields(image, result.tile_scores, result.boxes, name, out_dir, models))
    elif models.detector:
        patch = models.detector.image_size
        heat, boxes = patch_heatmap(
            models.detect, image, patch, tile_stride(patch, models.overlap), models.batch_size
        )
        row.update(_heat_fields(image, heat, boxes, name, out_dir, models))
    else:
        tile = models.segmenter.image_size
        probability = predict_tiled(
            models.segment, image, tile, models.overlap, models.batch_size,
            align=TILE_ALIGN,
        )  # fmt: skip
        tiles = len(segment_grid(height, width, tile, models.overlap))
        row.update(tiles_total=tiles, tiles_segmented=tiles)

    if probability is not None:
        row.update(_mask_fields(image, probability, name, out_dir, models))
        if not models.detector:
            row["verdict"] = "cracked" if row["crack_count"] else "uncracked"
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def _heat_fields(image, heat, boxes, name: str, out_dir: Path, models: _Models) -> dict:
    """Verdict, heat-map PNG and cracked patches from a classifier heat map."""
    threshold = models.detector.card.threshold
    cracked = [
        {"box": box.tolist(), "probability": round(float(score), 4)}
        for score, box in zip(heat.ravel(), boxes.reshape(-1, 4), strict=True)
        if score >= threshold
    ]
    heatmap_png = write_png(
        inside(out_dir, f"{name}_heatmap.png"), heatmap_overlay(image, heat, boxes, threshold)
    )
    return {
        "verdict": "cracked" if cracked else "uncracked",
        "max_probability": round(float(heat.max()), 4),
        "patches": int(heat.size),
        "cracked_patches": len(cracked),
        "cracked_patch_boxes": cracked,
        "heat_map": np.round(heat, 4).tolist(),
        "heatmap_png": heatmap_png.name,
    }


def _mask_fields(image, probability, name: str, out_dir: Path, models: _Models) -> dict:
    """Mask and overlay PNGs plus crack geometry from a probability map."""
    from fisuras.infer.geometry import measure_cracks

    mask = probability >= models.segmenter.card.threshold
    mask_png = write_png(inside(out_dir, f"{name}_mask.png"), mask.astype(np.uint8) * 255)
    overlay_png = write_png(inside(out_dir, f"{name}_overlay.png"), mask_overlay(image, mask))
    geometry = measure_cracks(
        mask, mm_per_px=models.mm_per_px, max_width_mm=models.max_width_mm
    ).to_dict()
    return {
        "crack_pixels": int(mask.sum()),
        **geometry_summary(geometry),
        "geometry": geometry,
        "mask_png": mask_png.name,
        "overlay_png": overlay_png.name,
    }


def geometry_summary(geometry: dict) -> dict:
    """The CSV columns taken from :meth:`CrackReport.to_dict` totals (mm ones None without a
    scale)."""
    totals = geometry["totals"]
    return {
        "crack_count": totals["count"],
        "total_length_px": round(totals["total_length_px"], 2),
        "max_width_px": round(totals["max_width_px"], 2),
        "total_length_mm": _round_or_none(totals["total_length_mm"]),
        "max_width_mm": _round_or_none(totals["max_width_mm"]),
        "wide_cracks": totals["wide_count"],
    }


def _round_or_none(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _error_row(text: str, reason: str) -> dict:
    return {"input": text, "status": "error", "error": f"{text}: {reason}"}


def _settings(models: _Models) -> dict:
    def describe(loaded: LoadedModel | None):
        if loaded is None:
            return None
        card = loaded.card
        return {"path": str(loaded.path), "backbone": card.backbone,
                "image_size": card.image_size, "threshold": card.threshold}

    mode = ("cascade" if models.detector and models.segmenter
            else "detect" if models.detector else "segment")  # fmt: skip
    return {
        "mode": mode,
        "detector": describe(models.detector),
        "segmenter": describe(models.segmenter),
        "runtime": {"requested": models.runtime,
                    **{slot: prepared.describe()
                       for slot, prepared in models.runtimes.items() if prepared}},
        "tile_overlap": models.overlap,
        "batch_size": models.batch_size,
        "mm_per_px": models.mm_per_px,
        "max_width_mm": models.max_width_mm,
    }


def _progress(total: int) -> Callable[[dict], None]:
    """A per-photo progress callback: Keras's bar on a terminal, plain lines anywhere else.

    Keras's bar redraws itself with carriage returns (on POSIX even when stdout is a file), which
    turns a log or CI output into one unreadable line; there, each photo gets its own line.
    """
    stream = sys.stdout
    if stream.isatty():
        import keras

        bar = keras.utils.Progbar(total, unit_name="image")
        return lambda row: bar.add(1)
    done = 0

    def line(row: dict) -> None:
        nonlocal done
        done += 1
        outcome = (f"{row['input']} ({row['seconds']:.1f} s)" if row["status"] == "ok"
                   else f"skipped, {row['error']}")  # the error names the file
        print(f"predict {done}/{total}: {outcome}", file=stream, flush=True)

    return line
