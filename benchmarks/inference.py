"""Inference benchmark: photos per second on a 1024x768 photo, Keras versus ONNX Runtime.

Measures in ONE run, side by side, on the same photo and the same models:

  (a) tiled segmentation (overlapping tiles, blended), Keras and ONNX Runtime;
  (b) classifier heat map (overlapping patches), Keras and ONNX Runtime;
  (c) the cascade (classifier scores every segmenter tile, segmenter runs on the tiles it
      passes) against segmenting every tile, as a function of the fraction of tiles passed
      (e.g. 10 %, 30 %, 100 %), in both runtimes.

Speed does not depend on the weights, so the models are fisuras.models builders with
weights="none". The cascade's speed *does* depend on how many tiles the classifier passes,
which random weights cannot say; so instead of faking a detector, (c) runs the real classifier
on every tile and then segments the top-scoring fraction ``f`` of tiles, for each ``f``: read the
row for the fraction your trained classifier passes on your photos (``tiles_segmented /
tiles_total`` in ``fisuras predict``'s report).

The photo is a synthetic concrete wall (fisuras.data.synth) cropped to 1024x768, or ``--photo``
resized to 1024x768. Times are the median over ``--repeats`` after one warm-up call.

Usage:
    python benchmarks/inference.py                  # full run (minutes; a quiet machine)
    python benchmarks/inference.py --quick          # smoke: tiny models and photo, seconds
    python benchmarks/inference.py --json out.json --photo my_wall.jpg
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FULL = {
    "photo": (768, 1024),
    "segmenter": ("mobilenet_v2", 256),
    "classifier": ("mobilenet_v2", 224),
    "repeats": 3,
    "fractions": (0.1, 0.3, 1.0),
}
QUICK = {
    "photo": (192, 256),
    "segmenter": ("unet_light", 64),
    "classifier": ("small_cnn", 64),
    "repeats": 1,
    "fractions": (0.1, 0.3, 1.0),
}
OVERLAP = 0.25
BATCH = 8


def make_photo(shape: tuple[int, int], photo: str | None):
    """float32 [H, W, 3]: ``photo`` resized, or a synthetic cracked wall."""
    import numpy as np
    from PIL import Image

    height, width = shape
    if photo:
        with Image.open(photo) as image:
            resized = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(resized, np.float32)
    from fisuras.data.synth import render_crack_sample

    image, _ = render_crack_sample(np.random.default_rng(0), max(shape), True, "wall")
    return image[:height, :width].astype(np.float32)


def build_runtimes(task: str, backbone: str, size: int, workdir: Path, threads: int) -> dict:
    """``{"keras": predict_batch, "onnx": predict_batch}`` for one freshly built model.

    The ONNX file comes from fisuras' own export (which also checks it matches Keras).
    """
    from fisuras.infer.export import export_model
    from fisuras.infer.runners import keras_predictor, onnx_predictor
    from fisuras.models import build_classifier, build_segmenter
    from fisuras.models.card import ModelCard

    build = build_segmenter if task == "segment" else build_classifier
    model = build(backbone, image_size=size, weights="none")
    run = workdir / task
    run.mkdir(parents=True, exist_ok=True)
    model.save(run / "model.keras")
    ModelCard(task=task, backbone=backbone, image_size=size).save(run)
    exported = export_model(run, "onnx", workdir / f"{task}-onnx")
    return {"keras": keras_predictor(model), "onnx": onnx_predictor(exported.path, threads=threads)}


def time_call(call, repeats: int) -> float:
    """Median seconds of ``call()`` over ``repeats`` runs, after one warm-up run."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(setup: dict, photo_path: str | None, threads: int) -> list[dict]:
    import numpy as np

    from fisuras.data.tiles import TILE_ALIGN
    from fisuras.infer.cascade import score_tiles
    from fisuras.infer.tiling import patch_heatmap, predict_tiled, tile_grid, tile_stride

    photo = make_photo(setup["photo"], photo_path)
    seg_backbone, tile = setup["segmenter"]
    cls_backbone, patch = setup["classifier"]
    repeats = setup["repeats"]
    align = TILE_ALIGN
    with tempfile.TemporaryDirectory(prefix="fisuras-bench-") as workdir:
        segment = build_runtimes("segment", seg_backbone, tile, Path(workdir), threads)
        detect = build_runtimes("detect", cls_backbone, patch, Path(workdir), threads)
    n_tiles = len(tile_grid(*photo.shape[:2], tile, OVERLAP, align=align))
    rows = []

    def add(measurement: str, runtime: str, setting: str, seconds: float, **extra) -> None:
        rows.append({"measurement": measurement, "runtime": runtime, "setting": setting,
                     "seconds_per_image": seconds, "images_per_s": 1.0 / seconds, **extra})
        print(f"  {measurement:<22} {runtime:<6} {setting:<30} {seconds:8.3f} s", flush=True)

    for runtime in ("keras", "onnx"):
        seconds = time_call(
            lambda r=runtime: predict_tiled(segment[r], photo, tile, OVERLAP, BATCH, align=align),
            repeats,
        )
        add("tiled segmentation", runtime, f"{n_tiles} tiles of {tile} px", seconds)
    stride = tile_stride(patch, OVERLAP)
    for runtime in ("keras", "onnx"):
        heat_shape = patch_heatmap(detect[runtime], photo, patch, stride, BATCH)[0].shape
        seconds = time_call(
            lambda r=runtime: patch_heatmap(detect[r], photo, patch, stride, BATCH), repeats
        )
        add("classifier heat map", runtime,
            f"{heat_shape[0] * heat_shape[1]} patches of {patch} px", seconds)

    for runtime in ("keras", "onnx"):
        for fraction in setup["fractions"]:
            passed = max(1, round(fraction * n_tiles))

            def cascade(r=runtime, k=passed):
                scores, _ = score_tiles(detect[r], photo, tile, patch, OVERLAP, BATCH, align=align)
                keep = np.zeros(scores.size, bool)
                keep[np.argsort(-scores.ravel(), kind="stable")[:k]] = True
                return predict_tiled(segment[r], photo, tile, OVERLAP, BATCH, align=align,
                                     keep=keep)

            add("cascade", runtime, f"{fraction:.0%} of tiles passed ({passed}/{n_tiles})",
                time_call(cascade, repeats), fraction=fraction, tiles_segmented=passed)
    return rows


def ratios(rows: list[dict]) -> list[str]:
    """ONNX Runtime vs Keras per measurement, and each cascade vs segmenting every tile."""
    def seconds(measurement: str, runtime: str, fraction: float | None = None) -> float:
        return next(r["seconds_per_image"] for r in rows if r["measurement"] == measurement
                    and r["runtime"] == runtime and r.get("fraction") == fraction)

    lines = []
    for measurement in ("tiled segmentation", "classifier heat map"):
        speedup = seconds(measurement, "keras") / seconds(measurement, "onnx")
        lines.append(f"{measurement}: ONNX Runtime is {speedup:.2f}x the speed of Keras")
    for runtime in ("keras", "onnx"):
        full = seconds("tiled segmentation", runtime)
        for row in [r for r in rows if r["measurement"] == "cascade" and r["runtime"] == runtime]:
            lines.append(f"cascade ({runtime}), {row['fraction']:.0%} of tiles passed: "
                         f"{full / row['seconds_per_image']:.2f}x the speed of segmenting all")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models and photo, smoke run")
    parser.add_argument("--photo", default=None, help="use this photo (resized) instead of synth")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="ONNX Runtime intra-op threads (default: all cores)")
    parser.add_argument("--json", default=None, help="write all numbers to this JSON file")
    args = parser.parse_args(argv)

    setup = QUICK if args.quick else FULL
    import keras
    import onnxruntime
    import tensorflow as tf

    print(f"fisuras inference benchmark ({'quick' if args.quick else 'full'}): photo "
          f"{setup['photo'][1]}x{setup['photo'][0]}, segmenter {setup['segmenter']}, classifier "
          f"{setup['classifier']}, overlap {OVERLAP}, batch {BATCH}, {os.cpu_count()} cores",
          flush=True)
    rows = measure(setup, args.photo, args.threads)
    print()
    print(f"{'measurement':<22} {'runtime':<6} {'setting':<30} {'s/image':>8} {'images/s':>9}")
    for row in rows:
        print(f"{row['measurement']:<22} {row['runtime']:<6} {row['setting']:<30} "
              f"{row['seconds_per_image']:8.3f} {row['images_per_s']:9.3f}")
    summary = ratios(rows)
    print()
    print("\n".join(summary))

    if args.json:
        from fisuras.files import write_json

        document = {
            "mode": "quick" if args.quick else "full",
            "setup": {**setup, "overlap": OVERLAP, "batch": BATCH, "onnx_threads": args.threads,
                      "photo_source": args.photo or "synthetic (fisuras.data.synth)"},
            "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                        "python": sys.version.split()[0], "tensorflow": tf.__version__,
                        "keras": keras.__version__, "onnxruntime": onnxruntime.__version__},
            "results": rows,
            "ratios": summary,
        }
        write_json(args.json, document)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
