"""Segmentation quality benchmark (issue 13, item 5): the default recipe against the floor.

For each seed, trains a segmenter with fisuras' DEFAULT settings (only ``seed``, ``runs_dir``,
``run_name`` and ``weights=none`` are set) on the three shared real sets
(``/work/shared/data/seg_cfd``, ``seg_deepcrack``, ``seg_crack500``, read as one dataset with
one group per set), times the run, and scores the model and the no-learning floor (black
top-hat, ``fisuras.evaluate.floor``) with the same protocol on

* each set's held-out test photos (see below), and
* GAPs384 ``valid`` (``/work/shared/zoo/valid/seg_gaps384``), a pavement set the model never
  trains on: an unseen set. AigleRN, the issue's second unseen set, is not available here.

It prints one markdown table per evaluation set (IoU, tolerance F1, ODS, OIS: mean and spread
over the seeds, model, floor and model - floor, with the issue's targets beside them), the
training time per run, the date (UTC), the machine and the settings that mattered, ready for
BENCHMARKS.md. No figure is written in this file: every number printed was measured by the run.

Held-out photos, disjoint by source photo
-----------------------------------------
``fisuras.train.train`` splits with ``fisuras.data.split_dataset``, which keys every file by a
hash of its bytes: identical files stay together, but two crops of one photo are different
bytes and can land on both sides. The shared sets' names show that this matters here. CFD
files are whole photos (``001.jpg``) and the CRACK500 crops come from 30 different photos
(``20160303_091830-6``: photo, then crop index), but the DeepCrack crops are cut from DeepCrack
images that are themselves pieces of larger camera shots: ``7Q3A9064-4-4``, ``7Q3A9064-6-0``,
``7Q3A9064-9-3`` and ``7Q3A9064-17-3`` show the same surface, as do ``11122-1-3``,
``11122-3-0`` and ``11122-4-4``, and ``11141-2`` and ``11141-3-5``. The source photo of a file
is therefore taken, conservatively, as its set and its name up to the FIRST ``-``
(:func:`source_photo`); for CFD, CRACK500 and GAPs384 this is the source photo the READMEs
name, for DeepCrack it is the camera shot.

The simplest way to keep the default recipe untouched (same split fractions, same training
photos as ``fisuras train segment``) is to let ``train`` split as it always does and then
decide which of its test photos may be scored: from the run's ``manifest.json``, a test photo
is kept only if no train or validation photo has its source photo (validation counts as the
other side too: it picks the best epoch and the threshold). The script prints, per seed and
set, how many test photos the library put aside, how many were kept, and how many source
photos the library split put on both sides; the kept photos have none by construction (the
script checks it). The cost is fewer scored DeepCrack photos, which the ``n photos`` column
shows; the seeds change the split too, so the spread covers the choice of photos as well as
the initial weights. Neighbouring shots of one street (CRACK500 names seconds apart) count as
different photos: nothing in the names ties them together. GAPs384 shares no photo with the
training sets (another dataset), so all of it (or, with ``--quick``, its first few images) is
scored.

Spread: the standard deviation over the seeds with 3 or more seeds; with 2, the range
(min-max); with 1, none. The output says which.

Usage:
    python benchmarks/quality.py                        # 3 default runs: a quiet machine
    python benchmarks/quality.py --seeds 1 2 3 4 5 --json quality.json --out runs/quality
    python benchmarks/quality.py --quick --seeds 1 2    # smoke only: tiny settings, NOT defaults

Not part of ``make test`` (pytest collects ``tests/`` only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path("/work/shared/data")
TRAIN_SETS = ("seg_cfd", "seg_deepcrack", "seg_crack500")
UNSEEN_SET = Path("/work/shared/zoo/valid/seg_gaps384")
SET_NAMES = {"seg_cfd": "CFD", "seg_deepcrack": "DeepCrack", "seg_crack500": "CRACK500",
             "seg_gaps384": "GAPs384 valid"}
MISSING_UNSEEN = "AigleRN (the issue's second unseen set) is not available on this machine"

# Issue 13's targets, for the DEFAULT recipe on the 2-core machine.
ODS_MARGIN_TARGET = 0.10  # model ODS at least this much above the floor's, on every set
TOLERANCE_F1_TARGET = {"seg_cfd": 0.75, "seg_deepcrack": 0.75, "seg_crack500": 0.40}
RUN_SECONDS_TARGET = 20 * 60

# A smoke test of the script, not of the recipe: its figures mean nothing.
QUICK_OVERRIDES = {"segment.epochs": 1, "segment.image_size": 64, "segment.backbone": "unet_light"}
QUICK_UNSEEN_IMAGES = 8

COLUMNS = (("iou", "IoU"), ("tolerance_f1", "tolerance F1"), ("ods", "ODS"), ("ois", "OIS"))
# The settings a reader needs to reproduce the figures (batch comes from the run: the plan's).
SHOWN_SETTINGS = (
    "segment.backbone", "segment.image_size", "segment.epochs", "segment.frozen_epochs",
    "weights", "segment.loss", "segment.learning_rate", "segment.lr_schedule",
    "segment.crops_per_photo", "segment.min_steps_per_epoch", "segment.scale_jitter",
    "augment", "val_fraction", "test_fraction", "segment.tolerance_px",
)


# --- held-out photos ---------------------------------------------------------------------------

def source_photo(group: str, image: str) -> str:
    """The photo a file was cut from: its set and its name up to the first ``-``.

    Conservative on purpose (see the module docstring): DeepCrack's ``7Q3A9064-4-4`` and
    ``7Q3A9064-17-3`` are crops of one camera shot.

    Example:
        >>> source_photo("seg_deepcrack", "/d/images/7Q3A9064-17-3.jpg")
        'seg_deepcrack/7Q3A9064'
        >>> source_photo("seg_crack500", "x/20160303_091830-6.jpg")
        'seg_crack500/20160303_091830'
        >>> source_photo("seg_cfd", "001.jpg")
        'seg_cfd/001'
    """
    return f"{group}/{Path(image).stem.split('-')[0]}"


def held_out(manifest) -> tuple[list, dict[str, dict[str, int]]]:
    """The run's test samples whose source photo is on no other side, and a count per set.

    Returns ``(kept samples, {set: {"test", "kept", "shared_sources", "scored_shared"}})``:
    ``test`` is the library's test split, ``shared_sources`` the source photos it has on both
    sides, ``scored_shared`` those among the kept photos (0, checked here).
    """
    other = {source_photo(s.group, s.image) for split in ("train", "val") for s in manifest[split]}
    kept = [s for s in manifest["test"] if source_photo(s.group, s.image) not in other]
    counts: dict[str, dict[str, int]] = {}
    for group in TRAIN_SETS:
        test = [s for s in manifest["test"] if s.group == group]
        shared = {source_photo(s.group, s.image) for s in test} & other
        scored = {source_photo(s.group, s.image) for s in kept if s.group == group}
        counts[group] = {"test": len(test), "kept": sum(s.group == group for s in kept),
                         "shared_sources": len(shared), "scored_shared": len(scored & other)}
        # The guarantee every figure is printed under: stop rather than print a leaky score.
        if counts[group]["scored_shared"]:
            raise RuntimeError(f"{group}: scored photos share a source photo with training")
    return kept, counts


def link_samples(folder: Path, samples) -> Path:
    """``folder/<group>/{images,masks}/`` of symlinks to ``samples``: a dataset to evaluate."""
    for sample in samples:
        for kind, path in (("images", sample.image), ("masks", sample.mask)):
            target = folder / sample.group / kind / Path(path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_symlink():  # made already by an interrupted benchmark
                target.symlink_to(Path(path).resolve())
    return folder


# --- one seed ----------------------------------------------------------------------------------

def run_seed(seed: int, data: Path, unseen: Path, workdir: Path, overrides: dict) -> dict:
    """Train with the defaults (plus ``overrides``) at ``seed``; score held-out and unseen."""
    from fisuras import hardware
    from fisuras.config import load_settings
    from fisuras.data import Manifest
    from fisuras.train import train
    from fisuras.train.finish import evaluate_run

    # weights and run_name may be overridden (benchmarks/finetune.py starts from a shipped model).
    settings = load_settings(overrides={
        "weights": "none", "run_name": f"quality-seed{seed}", **overrides, "seed": seed,
        "runs_dir": str(workdir / "runs")})
    plan = hardware.make_plan(hardware.detect_facts(), settings)

    def log(message: str) -> None:
        for line in message.splitlines():
            print(f"  [seed {seed}] {line}", file=sys.stderr, flush=True)

    run_path = workdir / "runs" / "segment" / settings.run_name
    resumed = (run_path / "state.json").is_file()  # an interrupted benchmark (--workdir) goes on
    print(f"seed {seed}: {'resuming ' + str(run_path) if resumed else 'training on ' + str(data)}"
          " ...", flush=True)
    start = time.perf_counter()
    if resumed:
        from fisuras.train import resumed_settings

        result = train("segment", None, resumed_settings(run_path, "segment"), plan,
                       resume=run_path, verbose=0, log=log)
    else:
        result = train("segment", data, settings, plan, verbose=0, log=log)
    train_seconds = time.perf_counter() - start
    print(f"seed {seed}: trained in {train_seconds:.0f} s ({result.run.path})", flush=True)

    plan_used = json.loads(result.run.file("plan.json").read_text(encoding="utf-8"))
    kept, counts = held_out(Manifest.load(result.run.file("manifest.json")))
    start = time.perf_counter()
    evaluations: dict[str, dict] = {}
    if kept:
        # Named "heldout" so evaluate_run writes metrics_heldout.json into the run.
        folder = link_samples(workdir / result.run.path.name / "heldout", kept)
        evaluations.update(scores(evaluate_run(result.run.path, folder, settings)))
    evaluations.update(scores(evaluate_run(result.run.path, unseen, settings)))
    eval_seconds = time.perf_counter() - start
    print(f"seed {seed}: evaluated in {eval_seconds:.0f} s", flush=True)
    return {
        "seed": seed, "run": str(result.run.path), "train_seconds": train_seconds,
        "resumed": resumed,  # then train_seconds covers only the part after the interruption
        "eval_seconds": eval_seconds, "epochs_trained": len(result.history),
        "batch_size": result.state.batch_size, "settings": settings.model_dump(mode="json"),
        "plan": {k: plan_used.get(k) for k in ("device", "precision", "xla", "intra_op_threads",
                                               "inter_op_threads", "replicas")},
        "held_out": counts, "threshold": result.metrics.get("threshold"),
        "evaluations": evaluations,
    }


def scores(evaluation: dict) -> dict[str, dict]:
    """``{set: {"n_images", "model": {...}, "floor": {...}}}`` from ``evaluate_run``'s result."""
    keys = ("n_images", "iou", "dice", "tolerance_f1", "ods", "ois", "ap")
    floor = evaluation["floor"]["figures"]
    return {
        group: {"n_images": figures["n_images"],
                "model": {k: figures[k] for k in keys},
                "floor": {k: floor[group][k] for k in keys}}
        for group, figures in evaluation["figures"].items() if group in SET_NAMES
    }


# --- summary -----------------------------------------------------------------------------------

def spread_kind(n: int) -> str:
    if n >= 3:
        return "mean ± standard deviation"
    return "mean [min, max]" if n == 2 else "single value (1 seed, no spread)"


def summarise(values: list[float], signed: bool = False, digits: int = 3) -> str:
    """``0.512 ± 0.031`` (3+ values), ``0.512 [0.480, 0.544]`` (2) or ``0.512`` (1).

    Example:
        >>> summarise([0.5, 0.6, 0.7]), summarise([-0.1, 0.2], signed=True), summarise([])
        ('0.600 ± 0.100', '+0.050 [-0.100, +0.200]', 'n/a')
    """
    if not values:
        return "n/a"
    form = f"{{:{'+' if signed else ''}.{digits}f}}"
    mean = form.format(statistics.fmean(values))
    if len(values) >= 3:
        return f"{mean} ± {statistics.stdev(values):.{digits}f}"
    if len(values) == 2:
        return f"{mean} [{form.format(min(values))}, {form.format(max(values))}]"
    return mean


def met(values: list[float], passes) -> str:
    return f"met by {sum(bool(passes(v)) for v in values)} of {len(values)} seeds"


def set_table(name: str, runs: list[dict], label: str) -> list[str]:
    """The markdown table of one evaluation set over the seeds that scored it."""
    entries = [r["evaluations"][name] for r in runs if name in r["evaluations"]]
    held = "held-out test photos" if name in TRAIN_SETS else "unseen set, never trained on"
    lines = [f"### {SET_NAMES[name]} ({name}): {held}{label}", ""]
    if not entries:
        return lines + [f"no photo of {name} was left to score in any seed", ""]
    photos = ", ".join(str(r["evaluations"].get(name, {}).get("n_images", 0)) for r in runs)
    lines += [f"photos scored per seed: {photos}; {spread_kind(len(entries))} over "
              f"{len(entries)} seeds", "",
              "| | " + " | ".join(title for _, title in COLUMNS) + " |",
              "|---|" + "---:|" * len(COLUMNS)]
    for row, side in (("model", "model"), ("floor (no learning)", "floor")):
        cells = [summarise([e[side][key] for e in entries]) for key, _ in COLUMNS]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    margins = {key: [e["model"][key] - e["floor"][key] for e in entries] for key, _ in COLUMNS}
    lines.append("| model - floor | " + " | ".join(
        summarise(margins[key], signed=True) for key, _ in COLUMNS) + " |")
    targets = {key: "" for key, _ in COLUMNS}
    targets["ods"] = (f"floor + {ODS_MARGIN_TARGET:.2f}: "
                      + met(margins["ods"], lambda v: v >= ODS_MARGIN_TARGET))
    if name in TOLERANCE_F1_TARGET:
        goal = TOLERANCE_F1_TARGET[name]
        targets["tolerance_f1"] = f">= {goal:.2f}: " + met(
            [e["model"]["tolerance_f1"] for e in entries], lambda v: v >= goal)
    lines += ["| target (issue 13) | " + " | ".join(targets[k] for k, _ in COLUMNS) + " |", ""]
    return lines


def report(runs: list[dict], quick: bool, unseen_note: str) -> list[str]:
    label = " - QUICK SMOKE RUN, NOT THE DEFAULTS" if quick else ""
    lines = []
    for name in (*TRAIN_SETS, UNSEEN_SET.name):
        lines += set_table(name, runs, label)
    lines += [f"Unseen sets: {UNSEEN_SET.name} ({unseen_note}); {MISSING_UNSEEN}.", ""]

    lines += [f"### Held-out photos per seed{label}", "",
              "library test split -> photos scored (their source photo is in neither train nor "
              "validation); source photos the library split put on both sides; source photos "
              "on both sides among the scored photos (0 by construction, checked)", "",
              "| seed | " + " | ".join(SET_NAMES[s] for s in TRAIN_SETS) + " |",
              "|---:|" + "---|" * len(TRAIN_SETS)]
    for r in runs:
        cells = [f"{c['test']} -> {c['kept']}; {c['shared_sources']} shared; "
                 f"{c['scored_shared']} scored shared"
                 for c in (r["held_out"][s] for s in TRAIN_SETS)]
        lines.append(f"| {r['seed']} | " + " | ".join(cells) + " |")
    lines.append("")

    train_s = [r["train_seconds"] for r in runs]
    goal = (f"<= {RUN_SECONDS_TARGET} s: " + met(train_s, lambda v: v <= RUN_SECONDS_TARGET)
            if not quick else "(applies to the defaults only)")
    lines += [f"### Time per run{label}", "", f"{spread_kind(len(runs))} over {len(runs)} seeds",
              "", "| | seconds | target (issue 13) |", "|---|---:|---|",
              f"| training (fisuras.train.train: check, split, fit, test) | "
              f"{summarise(train_s, digits=0)} | {goal} |",
              f"| re-evaluation (held-out + unseen, model and floor) | "
              f"{summarise([r['eval_seconds'] for r in runs], digits=0)} | |", ""]
    return lines


# --- machine and settings ----------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> str:
    """``<commit>`` or ``<commit> + uncommitted changes``: which code produced the figures."""
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + uncommitted changes" if dirty.strip() else "")


def header(runs: list[dict], quick: bool, seeds: list[int]) -> tuple[list[str], dict]:
    import keras
    import tensorflow as tf

    import fisuras
    from fisuras.config import Settings, dotted

    settings = dotted(Settings.model_validate(runs[0]["settings"]).to_dict())
    shown = {key: settings[key] for key in SHOWN_SETTINGS if key in settings}
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
               "python": sys.version.split()[0], "tensorflow": tf.__version__,
               "keras": keras.__version__, "fisuras": fisuras.__version__, "code": git_state()}
    mode = (f"QUICK SMOKE RUN: NOT the defaults (overrides {QUICK_OVERRIDES}, "
            f"{QUICK_UNSEEN_IMAGES} GAPs384 images); the figures below test the script only"
            if quick else "fisuras DEFAULT settings (only seed, runs_dir, run_name, weights=none "
            "set)")
    batches = sorted({r["batch_size"] for r in runs})
    epochs = sorted({r["epochs_trained"] for r in runs})
    lines = [
        "## Segmentation quality (benchmarks/quality.py)", "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}, fisuras "
        f"{machine['fisuras']} ({machine['code']})",
        f"- mode: {mode}",
        f"- seeds: {' '.join(map(str, seeds))} (each seed sets the split and the initial weights)",
        f"- training data: {', '.join(TRAIN_SETS)} from {SHARED_DATA} (one group per set)",
        f"- batch as resolved by the plan (per replica, after any back-off): "
        f"{', '.join(map(str, batches))}; epochs trained: {', '.join(map(str, epochs))}",
        "- plan: " + ", ".join(f"{k}={v}" for k, v in runs[0]["plan"].items()),
        "- settings: " + ", ".join(f"{k}={v}" for k, v in shown.items()),
        "",
    ]
    return lines, {"machine": machine, "settings_shown": shown}


# --- main --------------------------------------------------------------------------------------

def prepare_data(workdir: Path, quick: bool) -> tuple[Path, Path, str]:
    """Symlink folders: the three training sets (without cls_metu), and the unseen set."""
    from fisuras.data import read_dataset

    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)  # exists when an interrupted benchmark goes on
    for name in TRAIN_SETS:
        if not (data / name).is_symlink():
            (data / name).symlink_to(SHARED_DATA / name)
    samples = read_dataset(UNSEEN_SET, task="segment").samples
    if quick:
        samples = samples[:QUICK_UNSEEN_IMAGES]
    note = f"{len(samples)} of its images" if quick else f"all {len(samples)} images"
    # evaluate_run names its metrics file after the folder: metrics_seg_gaps384.json.
    unseen = link_samples(workdir / "unseen", samples) / UNSEEN_SET.name
    return data, unseen, note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3],
                        help="one training run per seed (default: 1 2 3)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings, a few unseen images: smoke test, NOT the defaults")
    parser.add_argument("--json", default=None, help="write every number to this JSON file")
    parser.add_argument("--out", default=None,
                        help="keep the runs (and their data links) in this folder "
                             "(default: a temporary folder, deleted at the end)")
    args = parser.parse_args(argv)

    from fisuras import hardware
    from fisuras.config import load_settings

    overrides = QUICK_OVERRIDES if args.quick else {}
    # Threads, memory growth and the like are set once per process, before any model exists.
    hardware.configure(load_settings(overrides={**overrides, "weights": "none"}))
    # A fresh folder per invocation: --out may already hold earlier benchmarks.
    workdir = (Path(args.out).absolute() / f"quality-{datetime.now(UTC):%Y%m%d-%H%M%S}"
               if args.out else Path(tempfile.mkdtemp(prefix="fisuras-quality-")))
    try:
        data, unseen, unseen_note = prepare_data(workdir, args.quick)
        runs = [run_seed(seed, data, unseen, workdir, overrides) for seed in args.seeds]
        head, facts = header(runs, args.quick, args.seeds)
        lines = head + report(runs, args.quick, unseen_note)
        print()
        print("\n".join(lines))
        if args.json:
            from fisuras.files import write_json

            document = {"mode": "quick" if args.quick else "default",
                        "quick_overrides": overrides, "date_utc": datetime.now(UTC).isoformat(),
                        "seeds": args.seeds, **facts, "unseen": unseen_note,
                        "unseen_missing": MISSING_UNSEEN, "runs": runs,
                        "targets": {"ods_margin": ODS_MARGIN_TARGET,
                                    "tolerance_f1": TOLERANCE_F1_TARGET,
                                    "run_seconds": RUN_SECONDS_TARGET},
                        "tables": lines}
            write_json(args.json, document)
            print(f"wrote {args.json}")
    finally:
        if args.out is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
