"""The shipped models at work (issue 16, points 2 and 5): seconds per photo, and cascade or not.

Measures in ONE run, with the installed shipped models (``crack-seg-s``, ``crack-det-s``):

(a) **Seconds per 1024x768 photo**, end to end as ``fisuras predict`` does it (tiles, blend,
    threshold, crack geometry, PNGs written; the ``seconds`` of each report row, model loading
    excluded): the segmenter alone and the cascade (detector picks the tiles), each through
    Keras and ONNX Runtime. Photos: CFD's 30 photos (real asphalt, never trained on), resized
    to 1024x768; the first photo of each configuration is a warm-up and not counted; median and
    the fraction of tiles the cascade segmented.
(b) **Same outputs**: the largest difference between the Keras and ONNX probability maps of the
    segmenter over those photos, and the masks' disagreeing pixels.
(c) **Cascade or not, at equal quality**: per set, ODS, tolerance F1 and IoU at the card's
    threshold of the segmenter alone and of the cascade (Keras), on the zoo's ``valid`` sets
    (the sources' own validation splits, never trained on) and on CFD (another dataset), with
    the fraction of tiles segmented. Reported per set, never pooled.

The decision rule printed at the end: the cascade is the default of ``fisuras predict`` only if
it is faster on the 1024x768 photos AND its ODS is within ``EQUAL_QUALITY`` of the segmenter's
on every set.

Usage:
    python benchmarks/shipped.py                    # a few minutes
    python benchmarks/shipped.py --photos 5 --json shipped.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402  (machine description, code version)

SEGMENTER, DETECTOR = "crack-seg-s", "crack-det-s"
PHOTO_SIZE = (1024, 768)  # width, height
CFD = Path("/work/shared/data/seg_cfd")
QUALITY_SETS = {
    "DeepCrack valid": Path("/work/shared/zoo/valid/seg_deepcrack"),
    "CRACK500 valid": Path("/work/shared/zoo/valid/seg_crack500"),
    "GAPs384 valid": Path("/work/shared/zoo/valid/seg_gaps384"),
    "CFD (another dataset)": CFD,
}
EQUAL_QUALITY = 0.005  # ODS the cascade may lose on a set and still count as equal
RUNTIMES = ("keras", "onnx")


def resized_photos(count: int, folder: Path) -> list[Path]:
    """CFD photos resized to 1024x768, written as JPEG into ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    photos = []
    for source in sorted((CFD / "images").iterdir())[:count + 1]:  # + the warm-up
        target = folder / f"{source.stem}.jpg"
        Image.open(source).convert("RGB").resize(PHOTO_SIZE, Image.BICUBIC).save(target,
                                                                                   quality=95)
        photos.append(target)
    return photos


def speed(photos: list[Path], workdir: Path) -> list[dict]:
    """(a): one predict_paths call per mode and runtime; per-photo seconds from the report."""
    from fisuras.infer.loading import load_model
    from fisuras.infer.predict import predict_paths

    segmenter = load_model(SEGMENTER, expect_task="segment")
    detector = load_model(DETECTOR, expect_task="detect")
    rows = []
    for mode, models in (("segmenter", (None, segmenter)), ("cascade", (detector, segmenter))):
        for runtime in RUNTIMES:
            out = workdir / f"{mode}-{runtime}"
            report = predict_paths([str(p) for p in photos], detector=models[0],
                                   segmenter=models[1], out_dir=out, runtime=runtime,
                                   progress=False)
            counted = report.rows[1:]  # the first photo warms the graph up
            fraction = (sum(r["tiles_segmented"] for r in counted)
                        / sum(r["tiles_total"] for r in counted))
            rows.append({"mode": mode, "runtime": runtime, "photos": len(counted),
                         "median_s": statistics.median(r["seconds"] for r in counted),
                         "max_s": max(r["seconds"] for r in counted),
                         "tiles_segmented": fraction, "out": str(out),
                         "runtime_used": report.settings.get("runtime")})
            print(f"  {mode} {runtime}: {rows[-1]['median_s']:.2f} s/photo", flush=True)
    return rows


def same_outputs(photos: list[Path]) -> dict:
    """(b): Keras against ONNX Runtime on the segmenter's probability maps."""
    import json

    import numpy as np

    from fisuras.data.tiles import TILE_ALIGN, TILE_OVERLAP
    from fisuras.infer.export import TOLERANCES
    from fisuras.infer.images import read_photo
    from fisuras.infer.loading import load_model
    from fisuras.infer.runners import keras_predictor, onnx_predictor
    from fisuras.infer.runtime import onnx_file, onnx_source_file
    from fisuras.infer.tiling import predict_tiled

    segmenter = load_model(SEGMENTER, expect_task="segment")
    # The ONNX file the model ships with (what predict's auto runtime runs), not a new export.
    shipped_onnx = onnx_file(segmenter.path)
    recorded = json.loads(onnx_source_file(segmenter.path).read_text(encoding="utf-8"))
    runners = {"keras": keras_predictor(segmenter.model), "onnx": onnx_predictor(shipped_onnx)}
    largest, disagreeing, pixels = 0.0, 0, 0
    for photo in photos[1:]:
        image = read_photo(photo)
        maps = {name: predict_tiled(run, image, segmenter.image_size, TILE_OVERLAP, 8,
                                    align=TILE_ALIGN) for name, run in runners.items()}
        largest = max(largest, float(np.max(np.abs(maps["keras"] - maps["onnx"]))))
        masks = {name: m >= segmenter.card.threshold for name, m in maps.items()}
        disagreeing += int(np.sum(masks["keras"] != masks["onnx"]))
        pixels += masks["keras"].size
    return {"max_probability_difference": largest, "mask_pixels_disagreeing": disagreeing,
            "mask_pixels": pixels, "export_logit_difference": recorded["max_abs_diff"],
            "export_tolerance": "{:g} + {:g} x max|logit|".format(*TOLERANCES["onnx"])}


def cascade_quality(limit: int | None) -> dict[str, dict]:
    """(c): per set, the segmenter alone and the cascade, same tiles, same threshold."""
    from fisuras.data import read_dataset
    from fisuras.data.images import read_mask, read_rgb
    from fisuras.data.tiles import TILE_ALIGN, TILE_OVERLAP
    from fisuras.evaluate.segmentation import SegmentationEvaluator
    from fisuras.infer.cascade import predict_cascade
    from fisuras.infer.loading import load_model
    from fisuras.infer.runners import keras_predictor
    from fisuras.infer.tiling import predict_tiled

    segmenter = load_model(SEGMENTER, expect_task="segment")
    detector = load_model(DETECTOR, expect_task="detect")
    segment, detect = keras_predictor(segmenter.model), keras_predictor(detector.model)
    results = {}
    for name, folder in QUALITY_SETS.items():
        evaluators = {mode: SegmentationEvaluator(fixed_threshold=segmenter.card.threshold)
                      for mode in ("segmenter", "cascade")}
        tiles = [0, 0]
        samples = read_dataset(folder, task="segment").samples[:limit]
        for sample in samples:
            image, true = read_rgb(sample.image), read_mask(sample.mask)
            alone = predict_tiled(segment, image, segmenter.image_size, TILE_OVERLAP, 8,
                                  align=TILE_ALIGN)
            both = predict_cascade(detect, segment, image, tile=segmenter.image_size,
                                   patch=detector.image_size, threshold=detector.card.threshold,
                                   overlap=TILE_OVERLAP, batch_size=8, align=TILE_ALIGN)
            evaluators["segmenter"].add(alone, true, name=sample.image)
            evaluators["cascade"].add(both.probability, true, name=sample.image)
            tiles[0] += both.tiles_segmented
            tiles[1] += both.tiles_total
        results[name] = {mode: {k: e.result()["all"][k] for k in ("ods", "tolerance_f1", "iou")}
                         for mode, e in evaluators.items()}
        results[name]["photos"] = len(samples)
        results[name]["tiles_segmented"] = tiles[0] / tiles[1]
        print(f"  {name}: ODS {results[name]['segmenter']['ods']:.3f} alone, "
              f"{results[name]['cascade']['ods']:.3f} cascade", flush=True)
    return results


def report(speeds: list[dict], outputs: dict, quality_rows: dict) -> tuple[list[str], bool]:
    lines = ["## Shipped models at work (benchmarks/shipped.py)", "",
             f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {quality.cpu_model()}, "
             f"{os.cpu_count()} cores; fisuras at {quality.git_state()}",
             f"- models: {SEGMENTER} (segmenter), {DETECTOR} (detector, cascade mode)", "",
             f"### Seconds per {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} photo (fisuras predict, end to "
             "end, model loading excluded)", "",
             "| mode | runtime | photos | median s | max s | tiles segmented |",
             "|---|---|---:|---:|---:|---:|"]
    for row in speeds:
        lines.append(f"| {row['mode']} | {row['runtime']} | {row['photos']} | "
                     f"{row['median_s']:.2f} | {row['max_s']:.2f} | "
                     f"{row['tiles_segmented']:.0%} |")
    by = {(r["mode"], r["runtime"]): r["median_s"] for r in speeds}
    lines += ["", "ONNX Runtime against Keras: " + ", ".join(
        f"{mode} {by[(mode, 'keras')] / by[(mode, 'onnx')]:.2f}x"
        for mode in ("segmenter", "cascade")) + "; cascade against segmenter alone (ONNX): "
        f"{by[('segmenter', 'onnx')] / by[('cascade', 'onnx')]:.2f}x", "",
        f"Keras and ONNX Runtime, same photos: largest probability difference "
        f"{outputs['max_probability_difference']:.2g}; mask pixels that differ "
        f"{outputs['mask_pixels_disagreeing']} of {outputs['mask_pixels']} (export check: "
        f"logit difference {outputs['export_logit_difference']:.2g} within "
        f"{outputs['export_tolerance']})", "",
        "### Segmenter alone or cascade, per set (card thresholds, Keras)", "",
        "| set | photos | ODS alone | ODS cascade | tol. F1 alone | tol. F1 cascade | "
        "IoU alone | IoU cascade | tiles segmented |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    equal = True
    for name, row in quality_rows.items():
        alone, both = row["segmenter"], row["cascade"]
        equal &= both["ods"] >= alone["ods"] - EQUAL_QUALITY
        lines.append(f"| {name} | {row['photos']} | {alone['ods']:.3f} | {both['ods']:.3f} | "
                     f"{alone['tolerance_f1']:.3f} | {both['tolerance_f1']:.3f} | "
                     f"{alone['iou']:.3f} | {both['iou']:.3f} | {row['tiles_segmented']:.0%} |")
    faster = by[("cascade", "onnx")] < by[("segmenter", "onnx")]
    cascade = faster and equal
    lines += ["", f"Decision (cascade only if faster AND ODS within {EQUAL_QUALITY} on every "
              f"set): faster {'yes' if faster else 'no'}, equal quality "
              f"{'yes' if equal else 'no'} -> default of `fisuras predict`: "
              f"{'cascade' if cascade else 'segmenter alone'}.", ""]
    return lines, cascade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10, help="1024x768 photos timed")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most this many photos per quality set (default: all)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from fisuras import hardware
    from fisuras.config import load_settings

    hardware.configure(load_settings())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fisuras-shipped-") as work:
        workdir = Path(work)
        photos = resized_photos(args.photos, workdir / "photos")
        print("(a) seconds per photo", flush=True)
        speeds = speed(photos, workdir)
        print("(b) Keras against ONNX Runtime", flush=True)
        outputs = same_outputs(photos)
        print("(c) segmenter alone or cascade", flush=True)
        quality_rows = cascade_quality(args.limit)
    lines, cascade = report(speeds, outputs, quality_rows)
    lines.append(f"Whole benchmark: {time.perf_counter() - started:.0f} s.")
    print("\n".join(lines))
    if args.json:
        from fisuras.files import write_json

        write_json(args.json, {"speed": speeds, "outputs": outputs, "quality": quality_rows,
                               "cascade_default": cascade, "tables": lines})
    return 0


if __name__ == "__main__":
    sys.exit(main())
