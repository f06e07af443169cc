"""Scaling benchmark: training images per second on tf.distribute, 1 vs 2 devices and workers.

Four configurations, each in fresh processes (a process holds one strategy), the same model,
the same global batch and the same in-memory data (so the input pipeline is not measured):

  1 device      the default strategy, one process;
  2 devices     MirroredStrategy over 2 logical CPU devices (on a GPU machine: 2 GPUs), one process;
  1 worker      MultiWorkerMirroredStrategy with a one-worker TF_CONFIG (the strategy's own cost);
  2 workers     MultiWorkerMirroredStrategy, 2 processes on 127.0.0.1 through `fisuras launch`.

Each configuration runs ``--warmup`` steps (tracing, collective set-up) and then times
``--steps`` steps inside one ``model.fit``; images/s = steps x global batch / time. The
configurations run in interleaved rounds (``--repeats``) and the median is reported, so a load
change on a shared machine hits them all alike. Images per CPU-second (the CPU time of every
process taking part) shows the cost of distribution even when other jobs share the cores.
Ratios are against "1 device".

On a 2-core CPU the logical devices and local workers share the same two cores, so the ratios
show what distribution costs there, not a speed-up; on GPUs each replica has its own device.

Usage:
    python benchmarks/scaling.py                     # defaults: small_cnn 96 px, batch 32
    python benchmarks/scaling.py --steps 5 --warmup 2 --image-size 32   # smoke run
    python benchmarks/scaling.py --json results.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("1 device", "2 devices", "1 worker", "2 workers")
RESULT = "SCALING_RESULT "


# --- one measurement (runs inside the worker process) -----------------------------------------

def measure(config: str, args: argparse.Namespace) -> dict:
    """Build the strategy for ``config``, train, and time the steps after the warm-up."""
    from fisuras.config import Settings
    from fisuras.distribute import cluster_from_environ, make_strategy
    from fisuras.hardware import configure, detect_facts

    load = os.getloadavg()[0]
    devices = 2 if config == "2 devices" else 1
    cluster = cluster_from_environ(os.environ)
    workers = cluster.num_workers if cluster else 1
    settings = Settings(devices=devices, workers=workers, weights="none", detect={
        "batch_size": args.batch // (devices * workers), "backbone": args.backbone,
        "image_size": args.image_size})
    plan = configure(settings, facts=detect_facts()).plan
    if config == "1 worker":  # a one-worker cluster still gets the multi-worker strategy
        from dataclasses import replace
        plan = replace(plan, strategy="multi_worker", workers=1)
    strategy = make_strategy(plan, cluster)

    import keras
    import numpy as np
    import tensorflow as tf

    from fisuras import models
    from fisuras.train.callbacks import StepClock

    with strategy.scope():
        model = models.build_classifier(args.backbone, image_size=args.image_size,
                                        weights="none", dropout=0.0)
        model.compile(keras.optimizers.Adam(1e-3), models.make_loss("bce"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch * 4, args.image_size, args.image_size, 3), np.uint8)
    labels = rng.integers(0, 2, (args.batch * 4, 1)).astype("float32")
    # Prefetch as fisuras's pipeline does (distributed datasets prefetch by themselves).
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(args.batch).repeat()
    data = data.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = data.with_options(options)

    clock = StepClock(args.warmup)  # from the end of step ``warmup`` to the end of the last
    model.fit(data, epochs=1, steps_per_epoch=args.warmup + args.steps, verbose=0,
              callbacks=[clock])
    seconds = clock.measured_seconds()
    return {"config": config, "rank": cluster.rank if cluster else 0, "load": load,
            "cpu_seconds": clock.cores_used() * seconds,
            "replicas": strategy.num_replicas_in_sync, "workers": workers,
            "global_batch": args.batch, "steps": args.steps, "seconds": seconds,
            "images_per_second": args.steps * args.batch / seconds,
            "strategy": f"{plan.strategy} ({type(strategy).__name__})"}


# --- driver ------------------------------------------------------------------------------------

def run_config(config: str, args: argparse.Namespace) -> dict:
    """Run one configuration in fresh processes: the chief's wall time, everyone's CPU time."""
    worker = [sys.executable, str(Path(__file__).resolve()), "--measure", config,
              "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch",
              str(args.batch), "--image-size", str(args.image_size), "--backbone", args.backbone]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TF_CONFIG", None)
    if config.endswith("workers") or config == "1 worker":
        from fisuras.distribute import launch

        out = io.StringIO()
        code = launch(worker, 2 if config == "2 workers" else 1, environ=env, out=out)
        text = out.getvalue()
        lines = [line.split(RESULT, 1)[1] for line in text.splitlines() if RESULT in line]
        lines.sort(key=lambda line: json.loads(line)["rank"], reverse=True)  # the chief last
    else:
        done = subprocess.run(worker, env=env, capture_output=True, text=True)
        code, text = done.returncode, done.stdout + done.stderr
        lines = [line.split(RESULT, 1)[1] for line in done.stdout.splitlines() if RESULT in line]
    if code != 0 or not lines:
        raise RuntimeError(f"{config} failed (exit {code}):\n{text[-3000:]}")
    measured = [json.loads(line) for line in lines]
    chief = measured[-1]
    # Wall time is the chief's (the workers step together); CPU time is every process's.
    chief["cpu_seconds"] = sum(m["cpu_seconds"] for m in measured)
    chief["images_per_cpu_second"] = chief["steps"] * chief["global_batch"] / chief[
        "cpu_seconds"]
    return chief


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    parser.add_argument("--batch", type=int, default=32, help="global batch (even)")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--backbone", default="small_cnn")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds (median)")
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--json", dest="json_path", help="also write the results here")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one worker process
    args = parser.parse_args()
    if args.measure:
        print(RESULT + json.dumps(measure(args.measure, args)), flush=True)
        return

    chosen = args.only.split(",") if args.only else list(CONFIGS)
    started, started_at = machine(), time.strftime("%Y-%m-%d %H:%M")
    runs: dict[str, list[dict]] = {config: [] for config in chosen}
    for round_ in range(args.repeats):
        for config in chosen:
            print(f"round {round_ + 1}: measuring {config} ...", file=sys.stderr, flush=True)
            runs[config].append(run_config(config, args))
    results = []
    for measured in runs.values():
        rates = sorted(r["images_per_second"] for r in measured)
        results.append({**measured[0], "images_per_second": statistics.median(rates),
                        "all_images_per_second": rates,
                        "images_per_cpu_second": statistics.median(
                            r["images_per_cpu_second"] for r in measured),
                        "loads": [round(r["load"], 1) for r in measured]})
    for key in ("images_per_second", "images_per_cpu_second"):
        base = next((r[key] for r in results if r["config"] == "1 device"), None)
        for result in results:
            result[f"{key}_ratio"] = result[key] / base if base else None
    report = {"date": started_at, "machine": started,
              "settings": {"backbone": args.backbone, "image_size": args.image_size,
                           "global_batch": args.batch, "steps": args.steps,
                           "warmup": args.warmup, "repeats": args.repeats},
              "results": results}
    print(table(report))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2))
        print(f"results: {args.json_path}")


def machine() -> str:
    import tensorflow as tf

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores {platform.machine()}, {platform.system()}, Python "
            f"{platform.python_version()}, TensorFlow {tf.__version__}, load {load:.1f} at start")


def table(report: dict) -> str:
    rows = [f"{'configuration':<13} {'replicas':>8} {'images/s':>9} {'ratio':>6} "
            f"{'img/cpu-s':>9} {'ratio':>6}  {'runs (images/s)':<22} {'load':<14} strategy"]
    for r in report["results"]:
        def ratio(key, r=r):
            return f"{r[key]:.2f}" if r[key] else "-"
        each = ", ".join(f"{v:.1f}" for v in r["all_images_per_second"])
        loads = ", ".join(f"{v:.1f}" for v in r["loads"])
        rows.append(f"{r['config']:<13} {r['replicas']:>8} {r['images_per_second']:>9.1f} "
                    f"{ratio('images_per_second_ratio'):>6} {r['images_per_cpu_second']:>9.1f} "
                    f"{ratio('images_per_cpu_second_ratio'):>6}  {each:<22} {loads:<14} "
                    f"{r['strategy']}")
    settings = report["settings"]
    return "\n".join([f"{report['date']}  {report['machine']}",
                      f"{settings['backbone']} {settings['image_size']} px, global batch "
                      f"{settings['global_batch']}, {settings['steps']} timed steps, median "
                      f"of {settings['repeats']} interleaved rounds", *rows])


if __name__ == "__main__":
    main()
