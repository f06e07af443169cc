"""Run the turbo benchmark: data, one process per configuration, JSON and table in a run folder.

This process never imports TensorFlow: each configuration is measured by
``python -m fisuras.bench.worker`` (see there for why and what), and whatever happens to it
(an exception, out of memory, a crash, a timeout) comes back as a failed
:class:`~fisuras.bench.turbo.Measurement` with its reason, never as a number.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

from fisuras.bench.turbo import (
    SDNET2018_IMAGES,
    BenchmarkError,
    BenchmarkResult,
    Configuration,
    Measurement,
    best_of,
    calls,
    configurations,
    images_needed,
    select,
)
from fisuras.config import Settings, validate_settings
from fisuras.files import atomic_write_text, new_folder, write_json
from fisuras.hardware.facts import HardwareFacts
from fisuras.hardware.plan import make_plan

UNCRACKED_PER_CRACKED = 85 / 15  # SDNET2018: about 15% of the patches are cracked
DEFAULT_TIMEOUT_S = 1800.0


def run_benchmark(settings: Settings, facts: HardwareFacts, *, steps: int = 10,
                  backbone: str | None = None, image_size: int | None = None,
                  data: str | Path | None = None, out_dir: str | Path | None = None,
                  n_images: int = SDNET2018_IMAGES, epochs: int | None = None,
                  only: Iterable[str] | None = None, warmup_calls: int = 2, repeats: int = 1,
                  timeout_s: float = DEFAULT_TIMEOUT_S, force_fail: Iterable[str] = (),
                  work_dir: str | Path | None = None, python: str = sys.executable,
                  log: Callable[[str], None] | None = None) -> BenchmarkResult:
    """Measure baseline, each optimisation alone and the planned setting on this machine.

    Args:
        settings: resolved settings; the model is ``detect.backbone`` at ``detect.image_size``
            with random weights, the plan is made from ``facts`` and these settings.
        facts: the hardware found (``fisuras.hardware.detect_facts()``).
        steps: measured training steps per configuration, after ``warmup_calls`` calls.
        backbone, image_size: override the settings' detection backbone and input size.
        data: a detection dataset folder; default: synthetic SDNET2018-shaped JPEGs generated
            once into ``work_dir`` (default ``<runs_dir>/benchmark/data``), enough that no
            configuration sees an image twice.
        out_dir: run folder; default ``<runs_dir>/benchmark/<timestamp>``.
        n_images, epochs: the dataset size and epochs the projections are for (default
            SDNET2018's 56,092 images and the settings' ``detect.epochs``).
        only: configuration names to run (default all), e.g. ``["baseline", "planned"]``.
        repeats: run every configuration this many times, in interleaved rounds, and keep each
            one's fastest run (on a machine shared with other work, the least disturbed).
        timeout_s: per configuration; a configuration over it fails with that reason.
        force_fail: test hook: these configurations raise on purpose inside their process.
        python: the interpreter that runs the workers.
        log: progress lines (default: stderr).

    Raises:
        ValueError: bad arguments (unknown configuration, too few images for a batch, ...).

    Example:
        >>> result = run_benchmark(load_settings(), detect_facts(), steps=10)  # doctest: +SKIP
        >>> print(result.table())                                        # doctest: +SKIP
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    if min(steps, warmup_calls, n_images, repeats) < 1:
        raise ValueError(f"steps, warmup_calls, n_images and repeats must be >= 1; got {steps}, "
                         f"{warmup_calls}, {n_images}, {repeats}")
    bench_settings = benchmark_settings(settings, backbone, image_size)
    plan = make_plan(facts, bench_settings)
    configs = select(configurations(plan, bench_settings), only)
    forced = set(force_fail)
    if unknown := sorted(forced - {c.name for c in configs}):
        raise BenchmarkError(f"force_fail: {', '.join(unknown)} is not a configuration of this "
                             f"run; "
                         f"allowed: {', '.join(c.name for c in configs)}")
    out = Path(out_dir) if out_dir is not None else new_folder(
        Path(settings.runs_dir) / "benchmark")
    out.mkdir(parents=True, exist_ok=True)
    size = bench_settings.detect.image_size
    data_info = prepare_data(data, configs, steps, warmup_calls, size,
                             Path(work_dir) if work_dir else
                             Path(settings.runs_dir) / "benchmark" / "data", log)

    runs: dict[str, list[Measurement]] = {c.name: [] for c in configs}
    total = len(configs) * repeats
    for index, (round_index, config) in enumerate(
            ((r, c) for r in range(repeats) for c in configs), 1):
        log(f"[{index}/{total}] {config.name}: {config.changes} ...")
        spec = {
            "configuration": config.to_dict(), "plan": plan.to_dict(),
            "settings": bench_settings.to_dict(), "data": data_info["path"],
            "warmup_calls": warmup_calls, "measured_calls": calls(steps,
                                                                  config.steps_per_execution),
            # The measured steps see each image once, as a first epoch does: a cache could only
            # cost here, so "auto" streams; an explicit memory/disk cache is honoured.
            "cache": "none" if bench_settings.cache == "auto" else bench_settings.cache,
            "cache_dir": str(out / "cache" / config.name),
            "force_fail": config.name in forced,
        }
        tag = config.name if repeats == 1 else f"{config.name}.run{round_index + 1}"
        measurement = measure_in_subprocess(tag, spec, out, timeout_s=timeout_s, python=python)
        runs[config.name].append(measurement)
        log(f"    {summary_line(measurement)}")
    measurements = {name: best_of(measured) for name, measured in runs.items()}

    machine = {**facts.to_dict(), "tensorflow": _installed("tensorflow"),
               "python": sys.version.split()[0]}
    result = BenchmarkResult(
        configurations=configs, measurements=measurements, n_images=n_images,
        epochs=epochs if epochs is not None else bench_settings.detect.epochs,
        backbone=bench_settings.detect.backbone, image_size=size, steps=steps,
        warmup_calls=warmup_calls, data=data_info, machine=machine, plan=plan.to_dict(),
        created=time.strftime("%Y-%m-%d %H:%M"), out_dir=str(out), repeats=repeats)
    save_result(result, out)
    return result


def benchmark_settings(settings: Settings, backbone: str | None,
                       image_size: int | None) -> Settings:
    """The settings with the benchmark's model: random weights (speed does not depend on them,
    and nothing is downloaded)."""
    values = settings.to_dict()
    values["weights"] = "none"
    if backbone is not None:
        values["detect"]["backbone"] = backbone
    if image_size is not None:
        values["detect"]["image_size"] = image_size
    return validate_settings(values, "the benchmark's options (--backbone, --image-size)")


# --- data ----------------------------------------------------------------------------------------

def prepare_data(data: str | Path | None, configs: list[Configuration], steps: int,
                 warmup_calls: int, image_size: int, work_dir: Path,
                 log: Callable[[str], None]) -> dict:
    """The dataset to train on: ``data`` checked, or synthetic images (made once, reused)."""
    from fisuras.data import read_dataset

    largest_batch = max(c.batch_size for c in configs)
    if data is not None:
        count = len(read_dataset(data, task="detect").samples)
        if count < largest_batch:
            raise BenchmarkError(f"{data}: {count} images, fewer than one batch of "
                                 f"{largest_batch}")
        return {"path": str(Path(data).absolute()), "synthetic": False, "images": count}
    needed = images_needed(configs, steps, warmup_calls)
    folder, count = synthetic_sdnet(work_dir, needed, image_size, log)
    return {"path": str(folder), "synthetic": True, "images": count}


def synthetic_split(n_images: int) -> tuple[int, int]:
    """(cracked, uncracked) images per surface for at least ``n_images`` at SDNET2018's 15%."""
    cracked = math.ceil(n_images / (3 * (1 + UNCRACKED_PER_CRACKED)))
    return cracked, math.ceil(cracked * UNCRACKED_PER_CRACKED)


def synthetic_sdnet(work_dir: Path, n_images: int, image_size: int,
                    log: Callable[[str], None]) -> tuple[Path, int]:
    """SDNET2018-shaped JPEGs (D/CD D/UD P/CP ...) at the crop-source side of ``image_size``
    (256 px for 224, like SDNET2018), generated once per size and count."""
    from fisuras.data.cache_plan import crop_source_side
    from fisuras.data.synth import SUMMARY_NAME, synthesize

    cracked, uncracked = synthetic_split(n_images)
    side = crop_source_side(image_size)
    out = work_dir / f"sdnet_{side}px_{cracked}c_{uncracked}u"
    count = 3 * (cracked + uncracked)
    if not (out / SUMMARY_NAME).is_file():  # written last: its absence means "not complete"
        log(f"generating {count:,} synthetic {side} px images in {out} ...")
        synthesize(out, n_per_class_per_surface=cracked, n_uncracked_per_surface=uncracked,
                   n_seg=0, image_size=side, seed=0)
    return out / "sdnet", count


# --- one configuration -----------------------------------------------------------------------

def measure_in_subprocess(tag: str, spec: dict, out: Path, *, timeout_s: float,
                          python: str = sys.executable) -> Measurement:
    """Run the worker on ``spec`` (files named ``tag``); its result, or why there is none."""
    folder = out / "configurations"
    folder.mkdir(parents=True, exist_ok=True)
    spec_path = folder / f"{tag}.spec.json"
    result_path = folder / f"{tag}.result.json"
    log_path = folder / f"{tag}.log"
    write_json(spec_path, spec, indent=1)
    result_path.unlink(missing_ok=True)
    command = [python, "-m", "fisuras.bench.worker", str(spec_path), str(result_path)]
    load_before = load_average()
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log_file:
        try:
            process = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT,
                                     env=worker_environment(), timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return Measurement.failed(f"timed out after {timeout_s:.0f} s", log=str(log_path),
                                      load_average_before=load_before)
    wall = time.perf_counter() - started
    if result_path.is_file():
        measurement = Measurement.from_dict(json.loads(result_path.read_text(encoding="utf-8")))
        if measurement.status == "ok" and not measurement.ok:
            measurement = Measurement.failed("the worker reported no images/s")
    else:
        measurement = Measurement.failed(exit_reason(process.returncode, log_path))
    # Other processes on the same cores slow a configuration down: keep the load next to it.
    measurement.details.update(wall_seconds=wall, log=str(log_path),
                               load_average_before=load_before,
                               load_average_after=load_average())
    return measurement


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where the OS has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # Windows
        return None


def worker_environment() -> dict[str, str]:
    """This environment, quiet TensorFlow, and this fisuras importable even if not installed."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    source_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
    return env


def exit_reason(returncode: int, log_path: Path) -> str:
    """Why a worker stopped without writing its result (a crash or a kill)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (the system may have run out of memory)" if -returncode == signal.SIGKILL else ""
        reason = f"killed by {name}{hint}"
    else:
        reason = f"exited with code {returncode}"
    lines = [line.strip() for line in log_path.read_text(encoding="utf-8",
                                                         errors="replace").splitlines()]
    last = next((line for line in reversed(lines) if line), "")
    return f"{reason}: {last[:200]}" if last else reason


def summary_line(m: Measurement) -> str:
    """One progress line for a finished configuration."""
    if not m.ok:
        return f"FAILED: {m.reason}"
    return (f"{m.images_per_second:.1f} images/s, first call {m.compile_seconds:.1f} s, "
            f"peak {m.peak_memory_mb:,.0f} MB ({m.memory_kind})")


def save_result(result: BenchmarkResult, out: Path) -> None:
    """``benchmark.json`` and ``benchmark.txt`` (the table), both written atomically."""
    data = result.to_dict()
    data["table"] = result.table()
    write_json(out / "benchmark.json", data, indent=1)
    atomic_write_text(out / "benchmark.txt", data["table"] + "\n")


def _installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
