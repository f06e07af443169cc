"""The turbo before/after benchmark, pure part: configurations, projections, plan checks, tables.

Nothing here measures or imports TensorFlow. ``fisuras.bench.run`` measures each
:class:`Configuration` in its own process and hands back :class:`Measurement` objects; this module
turns them into the figures users see.

The configurations (derived from the hardware plan, so a GPU and a CPU get different "planned"):

* ``baseline``: float32, no XLA, batch 32, a plain tf.data input (no parallel map, no cache, no
  prefetch), TensorFlow's own threads and environment -- what a simple Keras script does;
* ``mixed_precision``, ``xla``, ``batch``, ``input_pipeline``: the baseline with one optimisation;
* ``runtime``: the baseline with the plan's thread counts and environment variables (e.g.
  ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow 2.21 turns oneDNN on by itself only on CPUs with
  AVX-512-class features, not on an AVX2 laptop CPU);
* ``planned``: everything the plan chose (precision, XLA, batch, fisuras input, threads,
  steps per execution, environment variables).

Example:
    >>> from fisuras.config import Settings
    >>> from fisuras.hardware.facts import HardwareFacts
    >>> from fisuras.hardware.plan import make_plan
    >>> plan = make_plan(HardwareFacts(cpu_cores=2), Settings())
    >>> [c.name for c in configurations(plan, Settings())]
    ['baseline', 'mixed_precision', 'xla', 'batch', 'input_pipeline', 'runtime', 'planned']
    >>> round(epoch_seconds(56_092, images_per_second=11.0) / 60)
    85
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fisuras.config import Settings
from fisuras.errors import FisurasError
from fisuras.files import format_table
from fisuras.hardware.plan import Plan

SDNET2018_IMAGES = 56_092
BASELINE_BATCH = 32
LARGER_BATCH = 64  # the seed's "batch 32 -> 64" when the plan itself keeps 32
NOISE = 0.05  # ratios within 5% of 1.0 are flagged as possibly noise


class BenchmarkError(FisurasError, ValueError):
    """A benchmark option names no configuration, or its dataset is too small to measure."""


@dataclass(frozen=True)
class Configuration:
    """One way to train, measured in its own process.

    ``dimension`` names the single optimisation a one-change configuration tests ("precision",
    "xla", "batch", "input"); ``plan_choice`` says whether its changed value is what the plan
    picked (so the plan check knows which side of the comparison the plan is on).
    """

    name: str
    changes: str  # what differs from the baseline, for people
    precision: str = "float32"  # Keras policy
    xla: bool = False
    batch_size: int = BASELINE_BATCH
    input_pipeline: str = "plain"  # "plain" | "fisuras"
    steps_per_execution: int = 1
    runtime: bool = False  # the plan's threads and environment variables (XLA's excepted)
    full_plan: bool = False  # everything the plan chose, as a real run applies it
    dimension: str | None = None
    plan_choice: bool = False

    @property
    def setting(self) -> str:
        """The value this configuration uses along its dimension, e.g. "mixed_float16"."""
        return _value_text(self, self.dimension) if self.dimension else self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _value_text(config: Configuration, dimension: str) -> str:
    if dimension == "precision":
        return config.precision
    if dimension == "xla":
        return "XLA on" if config.xla else "XLA off"
    if dimension == "batch":
        return f"batch {config.batch_size}"
    if dimension == "runtime":
        return "threads/env" if config.runtime else "TensorFlow's default threads/env"
    return f"{config.input_pipeline} input"


def configurations(plan: Plan, settings: Settings) -> list[Configuration]:
    """Baseline, each optimisation alone, and the plan's own setting, in that order.

    The one-change alternatives follow the plan where it turns an optimisation on (e.g. its
    precision on a tensor-core GPU, its batch); where the plan turns one off (the CPU), the
    alternative is what the user asked for, so the benchmark shows what the plan avoided.
    """
    baseline = Configuration("baseline", "float32, no XLA, batch 32, plain input")
    mixed = plan.precision if plan.precision != "float32" else (
        "mixed_bfloat16" if settings.gpu.precision == "bfloat16" else "mixed_float16")
    batch = plan.batch_size if plan.batch_size != BASELINE_BATCH else LARGER_BATCH
    alone = [
        Configuration("mixed_precision", f"precision {mixed}", precision=mixed,
                      dimension="precision", plan_choice=plan.precision == mixed),
        Configuration("xla", "XLA (jit_compile)", xla=True, dimension="xla",
                      plan_choice=plan.xla),
        Configuration("batch", f"batch {batch}", batch_size=batch, dimension="batch",
                      plan_choice=plan.batch_size == batch),
        Configuration("input_pipeline", "fisuras input pipeline", input_pipeline="fisuras",
                      dimension="input", plan_choice=True),
        Configuration("runtime", "the plan's " + _runtime_text(plan), runtime=True,
                      dimension="runtime", plan_choice=True),
    ]
    planned = Configuration(
        "planned", _planned_changes(plan), precision=plan.precision, xla=plan.xla,
        batch_size=plan.batch_size, input_pipeline="fisuras",
        steps_per_execution=plan.steps_per_execution, runtime=True, full_plan=True)
    return [baseline, *alone, planned]


def runtime_env(plan: Plan) -> dict[str, str]:
    """The plan's environment variables (XLA is not among them: it is set per model)."""
    return dict(plan.env)


def _runtime_text(plan: Plan) -> str:
    text = f"threads {plan.intra_op_threads}/{plan.inter_op_threads}"
    speed_env = {k: v for k, v in runtime_env(plan).items()
                 if k != "TF_CPP_MIN_LOG_LEVEL"}  # that one only quiets the logs
    if speed_env:
        text += ", env " + " ".join(f"{k}={v}" for k, v in speed_env.items())
    return text


def _planned_changes(plan: Plan) -> str:
    parts = [plan.precision, "XLA" if plan.xla else "no XLA", f"batch {plan.batch_size}",
             "fisuras input", _runtime_text(plan)]
    if plan.steps_per_execution != 1:
        parts.append(f"{plan.steps_per_execution} steps/call")
    return "the hardware plan: " + ", ".join(parts)


def select(configs: Sequence[Configuration], only: Iterable[str] | None) -> list[Configuration]:
    """The configurations named in ``only`` (all when None), in the standard order.

    Raises:
        BenchmarkError: a name that is not a configuration, listing the allowed names.
    """
    if only is None:
        return list(configs)
    wanted = {name.strip() for name in only if name.strip()}
    known = [c.name for c in configs]
    unknown = sorted(wanted - set(known))
    if unknown or not wanted:
        raise BenchmarkError(f"unknown configuration(s) {', '.join(unknown) or '(none given)'}; "
                         f"allowed: {', '.join(known)}")
    return [c for c in configs if c.name in wanted]


def calls(steps: int, steps_per_execution: int) -> int:
    """Training calls needed for at least ``steps`` steps (each call runs a whole execution)."""
    return max(1, math.ceil(steps / steps_per_execution))


def images_needed(configs: Iterable[Configuration], steps: int, warmup_calls: int) -> int:
    """Images so that no configuration sees one twice (no epoch-2 cache advantage)."""
    return max((calls(steps, c.steps_per_execution) + warmup_calls) * c.steps_per_execution
               * c.batch_size for c in configs)


# --- projections --------------------------------------------------------------------------------

def epoch_seconds(n_images: int, images_per_second: float) -> float:
    """Time for one pass over ``n_images`` at a measured training rate (training steps only)."""
    if images_per_second <= 0:
        raise ValueError(f"images_per_second must be > 0, got {images_per_second}")
    return n_images / images_per_second


def training_seconds(n_images: int, images_per_second: float, epochs: int) -> float:
    """Time for ``epochs`` passes (no validation, compilation shown apart)."""
    return epochs * epoch_seconds(n_images, images_per_second)


# --- measurements -------------------------------------------------------------------------------

@dataclass
class Measurement:
    """What one configuration's process reported, or why it failed (then no figure at all)."""

    status: str  # "ok" | "failed"
    reason: str = ""
    images_per_second: float | None = None
    compile_seconds: float | None = None
    peak_memory_mb: float | None = None
    memory_kind: str | None = None  # "gpu" (TensorFlow's peak) or "host" (process peak RSS)
    gpu_utilisation: float | None = None  # mean % over the measured steps, None without NVML
    details: dict[str, Any] = field(default_factory=dict)  # steps, seconds, applied state...

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.images_per_second)

    @classmethod
    def failed(cls, reason: str, **details: Any) -> Measurement:
        return cls(status="failed", reason=reason, details=details)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def best_of(runs: Sequence[Measurement]) -> Measurement:
    """The fastest of repeated runs of one configuration (with all their rates in ``details``).

    Other processes can only slow a run down, so the fastest is the least disturbed (the rule
    ``timeit`` follows). A configuration fails only when every run failed.

    Example:
        >>> best_of([Measurement("ok", images_per_second=3.0),
        ...          Measurement("ok", images_per_second=4.0)]).images_per_second
        4.0
    """
    if not runs:
        raise ValueError("best_of needs at least one run")
    fine = [m for m in runs if m.ok]
    best = max(fine, key=lambda m: m.images_per_second) if fine else runs[0]
    if len(runs) > 1:
        best.details["repeats"] = [m.images_per_second if m.ok else None for m in runs]
        best.details["failed_repeats"] = [m.reason for m in runs if not m.ok]
    return best


def speed_ratio(numerator: Measurement | None, denominator: Measurement | None) -> float | None:
    """Speed ratio of two measurements (None unless both have a figure)."""
    if numerator is None or denominator is None or not (numerator.ok and denominator.ok):
        return None
    return numerator.images_per_second / denominator.images_per_second


@dataclass(frozen=True)
class PlanCheck:
    """Is one choice of the plan at least as fast as its alternative, measured in this run?"""

    dimension: str
    planned: str
    alternative: str
    ratio: float | None  # planned choice's images/s / alternative's; None if not measured
    missing: str = ""

    @property
    def slower(self) -> bool:
        return self.ratio is not None and self.ratio < 1.0

    def line(self) -> str:
        head = f"plan check: {self.dimension}: plan's {self.planned} vs {self.alternative}"
        if self.ratio is None:
            return f"{head}: not measured ({self.missing})"
        if self.slower:
            noise = " (within 5%: may be noise, re-run with more --steps)" if (
                self.ratio >= 1 - NOISE) else ""
            return (f"{head}: {self.ratio:.2f}x -- the plan's choice is SLOWER than the "
                    f"alternative on this machine{noise}")
        return f"{head}: {self.ratio:.2f}x -- the plan's choice is at least as fast"


def plan_checks(configs: Sequence[Configuration],
                measurements: dict[str, Measurement]) -> list[PlanCheck]:
    """One check per one-change configuration that ran, against the baseline."""
    base = next((c for c in configs if c.name == "baseline"), None)
    checks = []
    for config in configs:
        if config.dimension is None or config.name not in measurements:
            continue
        base_text = _value_text(base or Configuration("baseline", ""), config.dimension)
        if config.plan_choice:
            planned, alternative = config.setting, base_text
        else:
            planned, alternative = base_text, config.setting
        measured, base_measured = measurements[config.name], measurements.get("baseline")
        if base_measured is None:
            checks.append(PlanCheck(config.dimension, planned, alternative, None,
                                    "baseline not run"))
            continue
        value = (speed_ratio(measured, base_measured) if config.plan_choice
                 else speed_ratio(base_measured, measured))
        missing = "" if value is not None else "; ".join(
            f"{name} failed" for name, m in (("baseline", base_measured),
                                             (config.name, measured)) if not m.ok)
        checks.append(PlanCheck(config.dimension, planned, alternative, value, missing))
    return checks


# --- formatting ---------------------------------------------------------------------------------

def format_duration(seconds: float | None) -> str:
    """Human durations: '42 s', '7.5 min', '3 h 05 min', '2 d 04 h'.

    Example:
        >>> format_duration(5100), format_duration(9000)
        ('85.0 min', '2 h 30 min')
    """
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    hours = seconds / 3600
    if hours < 48:
        return f"{int(hours)} h {round((hours % 1) * 60):02d} min"
    return f"{int(hours // 24)} d {int(hours % 24):02d} h"


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _change_ratio(before: float | None, after: float | None) -> str:
    if before is None or after is None or before == 0:
        return "-"
    return f"{after / before:.2f}x ({(after / before - 1) * 100:+.0f}%)"


def _change_diff(before: float | None, after: float | None, unit: str, digits: int = 1) -> str:
    if before is None or after is None:
        return "-"
    return f"{after - before:+,.{digits}f}{unit}"


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return format_table([dict(zip(header, row, strict=True)) for row in rows], header)


def before_after_table(before: Measurement | None, after: Measurement | None, *, n_images: int,
                       epochs: int) -> str:
    """The seed's shape: Metric | Before | After | Change, one row per metric.

    Before is the baseline, After the planned setting. A side that failed shows FAILED and one
    that was not run shows "not run" -- never a figure.
    """
    def rate(m: Measurement) -> float:
        return m.images_per_second

    def gpu(m: Measurement) -> float | None:
        return m.gpu_utilisation

    def epoch(m: Measurement) -> float:
        return epoch_seconds(n_images, m.images_per_second)

    def full(m: Measurement) -> float:
        return training_seconds(n_images, m.images_per_second, epochs)

    metrics = [  # label, figure of a measurement, how to print it, how to print the change
        ("images/s (after warm-up)", rate, _number, _change_ratio),
        ("compile, first call (s)", lambda m: m.compile_seconds, _number,
         lambda b, a: _change_diff(b, a, " s")),
        (f"peak memory (MB, {_memory_unit(before, after)})", lambda m: m.peak_memory_mb,
         lambda v: _number(v, 0), lambda b, a: _change_diff(b, a, " MB", 0)),
        ("GPU utilisation (%)", gpu, lambda v: "n/a" if v is None else _number(v, 0),
         lambda b, a: _change_diff(b, a, " pts", 0)),
        (f"epoch, {n_images:,} images", epoch, format_duration, _change_ratio),
        (f"full training, {epochs} epochs", full, format_duration, _change_ratio),
    ]
    rows = []
    for label, figure, show, change in metrics:
        cells, values = [], []
        for m in (before, after):
            value = figure(m) if m is not None and m.ok else None
            values.append(value)
            cells.append("not run" if m is None else show(value) if m.ok else "FAILED")
        rows.append((label, *cells, change(*values)))
    return _markdown(("Metric", "Before (baseline)", "After (planned)", "Change"), rows)


def _memory_unit(*measurements: Measurement | None) -> str:
    kinds = {m.memory_kind for m in measurements if m is not None and m.ok}
    if kinds == {"gpu"}:
        return "GPU peak"
    if kinds == {"host"}:
        return "process peak RSS"
    return "GPU peak or process peak RSS"


def configurations_table(configs: Sequence[Configuration], measurements: dict[str, Measurement],
                         *, n_images: int, reason_width: int = 90) -> str:
    """One row per configuration: its figures and its speed ratio to the baseline."""
    base = measurements.get("baseline")
    rows = []
    for config in configs:
        m = measurements.get(config.name)
        if m is None:
            continue
        if not m.ok:
            reason = m.reason if len(m.reason) <= reason_width else (
                m.reason[:reason_width - 3] + "...")
            rows.append((config.name, config.changes, f"FAILED: {reason}", "-", "-", "-", "-",
                         "-"))
            continue
        vs = speed_ratio(m, base)
        rows.append((
            config.name, config.changes, _number(m.images_per_second),
            "-" if vs is None else f"{vs:.2f}x", _number(m.compile_seconds),
            _number(m.peak_memory_mb, 0),
            "n/a" if m.gpu_utilisation is None else _number(m.gpu_utilisation, 0),
            format_duration(epoch_seconds(n_images, m.images_per_second)),
        ))
    return _markdown(("Configuration", "Changes vs baseline", "images/s", "vs baseline",
                      "compile s", "peak MB", "GPU %", "epoch"), rows)


# --- the whole result ---------------------------------------------------------------------------

def describe_machine(facts: dict[str, Any], tensorflow_version: str | None) -> str:
    """One line: device(s), cores, memory, OS, TensorFlow (from ``HardwareFacts.to_dict()``)."""
    gpus = facts.get("gpus") or ()
    device = ", ".join(
        f"{g['name']} ({g['memory_mb']} MB)" if g.get("memory_mb") else g["name"] for g in gpus
    ) or "no GPU"
    memory = f", {facts['memory_mb'] / 1024:.1f} GB RAM" if facts.get("memory_mb") else ""
    wsl = " (WSL2)" if facts.get("wsl2") else ""
    tf_text = f", TensorFlow {tensorflow_version}" if tensorflow_version else ""
    return (f"{device}; CPU {facts.get('machine', '?')} {facts.get('cpu_cores', '?')} cores"
            f"{memory}; {facts.get('os', '?')}{wsl}{tf_text}")


@dataclass
class BenchmarkResult:
    """Every configuration with its own measurement, and what the run was.

    ``table()`` is what ``fisuras benchmark`` prints; ``to_dict()`` is ``benchmark.json``.
    """

    configurations: list[Configuration]
    measurements: dict[str, Measurement]
    n_images: int
    epochs: int
    backbone: str
    image_size: int
    steps: int  # requested measured steps per configuration (rounded up to whole calls)
    warmup_calls: int
    data: dict[str, Any]  # path, synthetic, images
    machine: dict[str, Any]  # HardwareFacts.to_dict() + tensorflow version
    plan: dict[str, Any]
    created: str
    out_dir: str | None = None
    repeats: int = 1  # interleaved runs per configuration; the fastest counts

    def failures(self) -> dict[str, str]:
        """Configuration name -> reason, for every configuration that has no figure."""
        return {name: m.reason for name, m in self.measurements.items() if not m.ok}

    def planned_vs_baseline(self) -> float | None:
        return speed_ratio(self.measurements.get("planned"), self.measurements.get("baseline"))

    def plan_checks(self) -> list[PlanCheck]:
        return plan_checks(self.configurations, self.measurements)

    def headline(self) -> str:
        value = self.planned_vs_baseline()
        if value is not None:
            verdict = ("at least as fast" if value >= 1 else
                       "SLOWER: the plan does not pay on this machine, see the plan checks")
            return f"planned vs baseline: {value:.2f}x ({verdict})"
        missing = [n for n in ("baseline", "planned")
                   if n not in self.measurements or not self.measurements[n].ok]
        return f"planned vs baseline: n/a ({', '.join(missing)} not measured)"

    def table(self) -> str:
        data = (f"synthetic SDNET2018-shaped data ({self.data['images']:,} images)"
                if self.data.get("synthetic") else
                f"{self.data['path']} ({self.data['images']:,} images)")
        best = f", best of {self.repeats} interleaved runs" if self.repeats > 1 else ""
        lines = [
            f"fisuras benchmark, {self.created}: detection, {self.backbone} (random weights) at "
            f"{self.image_size} px, {self.steps} measured steps (whole calls) after "
            f"{self.warmup_calls} warm-up call(s){best}, {data}",
            "machine: " + describe_machine(self.machine, self.machine.get("tensorflow")),
            "",
            before_after_table(self.measurements.get("baseline"),
                               self.measurements.get("planned"),
                               n_images=self.n_images, epochs=self.epochs),
            "",
            configurations_table(self.configurations, self.measurements,
                                 n_images=self.n_images),
            "",
            self.headline(),
            *[check.line() for check in self.plan_checks()],
            *self._load_lines(),
            "",
            "Every figure was measured in this run, each configuration in its own process. "
            "Projections = images / measured images/s (x epochs): training steps only, whole "
            "network trainable, no validation, compilation apart.",
        ]
        return "\n".join(lines)

    def _load_lines(self) -> list[str]:
        """Other processes on the same cores slow a configuration down: say how busy it was."""
        loads = {name: m.details.get("load_average_before")
                 for name, m in self.measurements.items()}  # of the run that counts
        used = {name: m.details.get("cores_used") for name, m in self.measurements.items()}
        cores = self.machine.get("cpu_cores", "?")
        titled = [(f"CPU cores used while measured (of {cores}; less = other processes took a "
                   "share)", used), ("load average (1 min) as each configuration started", loads)]
        lines = []
        for title, values in titled:
            listed = ", ".join(f"{name} {value:.1f}" for name, value in values.items()
                               if value is not None)
            if listed:
                lines.append(f"{title}: {listed}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        rows = []
        base = self.measurements.get("baseline")
        for config in self.configurations:
            m = self.measurements.get(config.name)
            if m is None:
                continue
            projection = None
            if m.ok:
                projection = {
                    "epoch_seconds": epoch_seconds(self.n_images, m.images_per_second),
                    "training_seconds": training_seconds(self.n_images, m.images_per_second,
                                                         self.epochs)}
            rows.append({**config.to_dict(), "measurement": m.to_dict(),
                         "projection": projection, "vs_baseline": speed_ratio(m, base)})
        return {
            "created": self.created,
            "benchmark": {"task": "detect", "backbone": self.backbone, "weights": "none",
                          "image_size": self.image_size, "steps": self.steps,
                          "warmup_calls": self.warmup_calls, "repeats": self.repeats,
                          "n_images": self.n_images,
                          "epochs": self.epochs, "data": self.data},
            "machine": self.machine,
            "plan": self.plan,
            "configurations": rows,
            "planned_vs_baseline": self.planned_vs_baseline(),
            "plan_checks": [{**asdict(c), "slower": c.slower, "line": c.line()}
                            for c in self.plan_checks()],
            "out_dir": self.out_dir,
        }
