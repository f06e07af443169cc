"""Fine-tuning benchmark (issue 16, point 3): the shipped segmenter as a start, against scratch.

For each seed, two segmentation runs with fisuras' default settings on the 90 shared pairs
(``/work/shared/data/seg_cfd``, ``seg_deepcrack``, ``seg_crack500``), side by side in one
invocation, identical but for the initial weights:

* **from scratch**: ``weights=none``;
* **from crack-seg-s**: ``weights=crack-seg-s`` (the shipped model, offline).

Both use the shipped model's network (``segment.backbone=unet_light``; the default
``mobilenet_v2`` cannot take its weights), the default 256 px crops, epochs, schedule and split
(the seed sets both the split and the initial weights of the scratch run). Each is scored as in
``benchmarks/quality.py`` (whose helpers this script uses): on the run's held-out test photos
whose source photo is in neither its train nor its validation split, per set, and on GAPs384
``valid`` (157 crops).

A caution printed with every table: the shared DeepCrack and CRACK500 samples come from the same
repository folders as the zoo's training sets that crack-seg-s was trained on (same files or
same source photos, see ``../shared/data/README.md`` and ``../shared/zoo/README.md``), so the
fine-tuned model has seen those held-out photos before: on those sets the comparison favours it.
The script counts, per set, how many scored photos the shipped model trained on (by source
photo, the name before the last ``-N``). CFD is not in the zoo: there the comparison is clean.

Usage:
    python benchmarks/finetune.py --seeds 1              # two default-length runs per seed
    python benchmarks/finetune.py --seeds 1 2 --json finetune.json --out runs/finetune
    python benchmarks/finetune.py --quick --seeds 1      # smoke only: tiny settings
    # the scratch half while the shipped model still trains, the other half later:
    python benchmarks/finetune.py --only scratch --json scratch.json
    python benchmarks/finetune.py --only shipped --with scratch.json

Not part of ``make test`` (pytest collects ``tests/`` only).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402  (the sibling benchmark: data links, one run, scores, machine)

SHIPPED = "crack-seg-s"
ZOO = Path("/work/shared/zoo")
STARTS = {"from scratch": "none", f"from {SHIPPED}": SHIPPED}
NETWORK = {"segment.backbone": "unet_light"}  # the shipped model's network, for both starts
QUICK_OVERRIDES = {"segment.epochs": 1, "segment.image_size": 64}
COLUMNS = quality.COLUMNS


def shipped_sources(set_name: str) -> set[str]:
    """Source photos of the zoo's training set ``set_name``: what crack-seg-s trained on."""
    from fisuras.train.recipe import source_photo

    folder = ZOO / "train" / set_name / "images"
    return {source_photo(p) for p in folder.iterdir()} if folder.is_dir() else set()


def seen_counts(run_path: str) -> dict[str, tuple[int, int]]:
    """``{set: (scored photos the shipped model trained on, scored photos)}`` for one run."""
    from fisuras.data import Manifest
    from fisuras.train.recipe import source_photo

    kept, _ = quality.held_out(Manifest.load(Path(run_path) / "manifest.json"))
    counts = {}
    for name in quality.TRAIN_SETS:
        scored = [s for s in kept if s.group == name]
        trained_on = shipped_sources(name)
        counts[name] = (sum(source_photo(s.image) in trained_on for s in scored), len(scored))
    return counts


def run_pair(seed: int, data: Path, unseen: Path, workdir: Path, quick: bool,
             starts: dict[str, str], shipped_overrides: dict | None = None) -> dict:
    """``starts`` at ``seed``, one after the other, same data, same settings but weights."""
    runs = {}
    for label, weights in starts.items():
        overrides = {**NETWORK, **(QUICK_OVERRIDES if quick else {}), "weights": weights,
                     "run_name": f"{'shipped' if weights == SHIPPED else 'scratch'}-seed{seed}",
                     **(shipped_overrides or {} if weights == SHIPPED else {})}
        runs[label] = quality.run_seed(seed, data, unseen, workdir, overrides)
        runs[label]["seen_by_shipped"] = seen_counts(runs[label]["run"])
    return runs


def set_table(name: str, pairs: list[dict]) -> list[str]:
    """One set: each start's figures (mean/spread over seeds) and the difference."""
    scratch, shipped = STARTS
    entries = [p for p in pairs if name in p[scratch]["evaluations"]]
    lines = [f"### {quality.SET_NAMES[name]} ({name})", ""]
    if not entries:
        return lines + ["no photo of this set was left to score in any seed", ""]
    if name in quality.TRAIN_SETS:
        seen = [p[shipped]["seen_by_shipped"][name] for p in entries]
        lines += [f"held-out photos scored per seed: {', '.join(str(n) for _, n in seen)}; of "
                  f"them trained on by {SHIPPED}: {', '.join(str(k) for k, _ in seen)}"
                  + (" (NOT a fair comparison on this set)" if any(k for k, _ in seen) else
                     " (a clean comparison)"), ""]
    else:
        lines += [f"all {entries[0][scratch]['evaluations'][name]['n_images']} crops; "
                  f"{SHIPPED} trained on GAPs384's train split, not on these", ""]
    lines += ["| start | " + " | ".join(title for _, title in COLUMNS) + " |",
              "|---|" + "---:|" * len(COLUMNS)]
    for label in STARTS:
        cells = [quality.summarise([p[label]["evaluations"][name]["model"][key]
                                    for p in entries]) for key, _ in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    differences = {key: [p[shipped]["evaluations"][name]["model"][key]
                         - p[scratch]["evaluations"][name]["model"][key] for p in entries]
                   for key, _ in COLUMNS}
    lines.append(f"| {shipped} - scratch | " + " | ".join(
        quality.summarise(differences[key], signed=True) for key, _ in COLUMNS) + " |")
    wins = sum(d > 0 for d in differences["ods"])
    lines += ["", f"ODS higher from {SHIPPED} in {wins} of {len(entries)} seeds.", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--quick", action="store_true", help="tiny settings: smoke test only")
    parser.add_argument("--json", default=None, help="write every number to this JSON file")
    parser.add_argument("--out", default=None, help="keep the runs in this folder")
    parser.add_argument("--workdir", default=None,
                        help="the folder of an interrupted invocation (printed at its start): "
                             "its runs resume, finished ones are only evaluated")
    parser.add_argument("--shipped-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for the crack-seg-s start only, e.g. "
                             "segment.learning_rate=1e-4 (NOT the default run: say so)")
    parser.add_argument("--only", choices=("scratch", "shipped"),
                        help="run one start only (its runs go into --json)")
    parser.add_argument("--with", dest="earlier", default=None,
                        help="a --json of an earlier --only run: its runs join these (same "
                             "seeds); the tables need both starts")
    args = parser.parse_args(argv)
    starts = {label: weights for label, weights in STARTS.items()
              if args.only is None or (weights == SHIPPED) == (args.only == "shipped")}

    from fisuras import hardware
    from fisuras.config import load_settings
    from fisuras.shipped import shipped_model_folder

    if SHIPPED in starts.values():
        shipped_model_folder(SHIPPED)  # fails at once, with the train command, if not installed
    hardware.configure(load_settings(overrides={**NETWORK, "weights": "none"}))
    workdir = (Path(args.workdir).absolute() if args.workdir
               else Path(args.out).absolute() / f"finetune-{datetime.now(UTC):%Y%m%d-%H%M%S}"
               if args.out else Path(tempfile.mkdtemp(prefix="fisuras-finetune-")))
    print(f"working in {workdir} (after an interruption: --workdir {workdir})", flush=True)
    started = time.perf_counter()
    data, unseen, _ = quality.prepare_data(workdir, args.quick)
    import yaml

    shipped_overrides = {key: yaml.safe_load(value) for key, value in
                         (item.split("=", 1) for item in args.shipped_set)}
    pairs = [run_pair(seed, data, unseen, workdir, args.quick, starts, shipped_overrides)
             for seed in args.seeds]
    if args.earlier:
        import json

        earlier = json.loads(Path(args.earlier).read_text(encoding="utf-8"))
        if earlier["seeds"] != args.seeds or earlier["quick"] != args.quick:
            raise SystemExit(f"{args.earlier}: seeds {earlier['seeds']} (quick "
                             f"{earlier['quick']}), not {args.seeds} (quick {args.quick})")
        pairs = [{**before, **now} for before, now in zip(earlier["pairs"], pairs, strict=True)]
    if args.json:
        from fisuras.files import write_json

        write_json(args.json, {"seeds": args.seeds, "quick": args.quick, "pairs": pairs,
                               "code": quality.git_state()})
    scratch, shipped = STARTS
    if any(set(STARTS) - set(pair) for pair in pairs):
        print(f"runs of {', '.join(starts)} done; the tables need both starts (--with)")
        return 0
    lines = ["## Fine-tuning from the shipped segmenter (benchmarks/finetune.py)", "",
             f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {quality.cpu_model()}; "
             f"fisuras at {quality.git_state()}",
             f"- seeds: {' '.join(map(str, args.seeds))}; "
             + ("QUICK SMOKE RUN, tiny settings: figures mean nothing" if args.quick else
                "fisuras default segmentation settings with segment.backbone=unet_light"),
             f"- training seconds per seed, scratch / {SHIPPED}: " + "; ".join(
                 f"{p[scratch]['train_seconds']:.0f} / {p[shipped]['train_seconds']:.0f}"
                 for p in pairs) + (" (a resumed run counts only its last part)"
                                    if any(r.get("resumed") for p in pairs for r in p.values())
                                    else ""),
             f"- this invocation: {time.perf_counter() - started:.0f} s", ""]
    for name in (*quality.TRAIN_SETS, quality.UNSEEN_SET.name):
        lines += set_table(name, pairs)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
