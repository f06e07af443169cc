"""The hardware plan: a pure function from hardware facts and settings to what the run will do.

Every choice carries its reason, so ``fisuras doctor``, ``fisuras config show`` and the run folder
can say *why* mixed precision or XLA was turned off, not just that it was. The rules follow
measurements, not the flags alone (the figures, with their date and machine: BENCHMARKS.md,
'Turbo before/after'):

* Mixed FP16 only on GPUs with tensor cores: compute capability 7.0+ and not the GTX 16xx line
  (Turing without tensor cores; FP16 there is known to give NaNs). bfloat16 on 8.0+ when asked.
  A CPU has no tensor cores and emulates float16/bfloat16, which slows training down, so the CPU
  plan stays float32.
* XLA on GPUs only: on the CPU it slows these models' training down.
* oneDNN on x86 CPUs: it speeds CPU training up.
* Batch: the seed's advice for a 4 GB GPU is 64, else 56, else 48; the engine walks this ladder
  down on out-of-memory.

GPU rules are reasoned from NVIDIA's and TensorFlow's documentation; no GPU is part of this
project's test workflow (see BENCHMARKS.md for what was measured where).

Example:
    >>> from fisuras.config import Settings
    >>> from fisuras.hardware.facts import HardwareFacts
    >>> plan = make_plan(HardwareFacts(cpu_cores=2), Settings())
    >>> plan.precision, plan.xla
    ('float32', False)
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from fisuras.config import Settings
from fisuras.hardware.facts import GpuFacts, HardwareFacts

TENSOR_CORE_CAPABILITY = (7, 0)
BFLOAT16_CAPABILITY = (8, 0)
SMALL_GPU_MB = 4096 + 512  # "4 GB" cards report 3.7-4.1 GiB
SEED_BATCH_LADDER = (64, 56, 48, 32, 24, 16, 8, 4, 2, 1)


def batch_ladder(batch: int) -> tuple[int, ...]:
    """``batch`` then the seed's smaller batches: the out-of-memory fallbacks, largest first.

    Example:
        >>> batch_ladder(20)
        (20, 16, 8, 4, 2, 1)
    """
    return tuple(sorted({batch, *(b for b in SEED_BATCH_LADDER if b < batch)}, reverse=True))


@dataclass(frozen=True)
class Plan:
    """What the run does on this machine, with a reason per choice."""

    device: str  # "gpu" | "cpu"
    precision: str  # keras policy: "float32" | "mixed_float16" | "mixed_bfloat16"
    xla: bool
    memory_growth: bool
    memory_limit_mb: int | None
    intra_op_threads: int
    inter_op_threads: int
    prefetch: int  # -1 means tf.data.AUTOTUNE
    batch_size: int  # per replica
    batch_ladder: tuple[int, ...]  # out-of-memory fallbacks, largest first, batch_size first
    steps_per_execution: int
    cache_budget_bytes: int
    strategy: str  # "default" | "mirrored" | "multi_worker"
    replicas: int
    learning_rate_scale: float  # global batch / reference batch
    env: dict[str, str] = field(default_factory=dict)  # set before TensorFlow is imported
    reasons: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # processes taking part (MultiWorkerMirroredStrategy); replicas include them
    # Optimisations the engine turned off because the first step failed with them (XLA, then a
    # reduced-precision policy), each with the error's first line (``Plan.fallback``).
    fallbacks: tuple[str, ...] = ()
    # Segmentation: its own batch (U-Net crops, not detection patches) and learning-rate scale.
    segment_batch_size: int = 8
    segment_learning_rate_scale: float = 1.0
    reference_batch_size: int = 64  # the global batch the settings' learning rates are for
    segment_reference_batch_size: int = 8

    @property
    def local_devices(self) -> int:
        """Replicas in this process: the devices MirroredStrategy (or each worker) drives."""
        return max(1, self.replicas // max(1, self.workers))

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.replicas

    def with_batch(self, batch_size: int) -> Plan:
        """The same plan at a smaller batch (used by the out-of-memory back-off)."""
        from dataclasses import replace

        ladder = tuple(b for b in self.batch_ladder if b <= batch_size)
        if not ladder or ladder[0] != batch_size:
            ladder = (batch_size, *ladder)
        scale = linear_learning_rate_scale(batch_size * self.replicas,
                                           self.reference_batch_size)
        return replace(self, batch_size=batch_size, batch_ladder=ladder,
                       learning_rate_scale=scale)

    def for_segmentation(self) -> Plan:
        """The plan a segmentation run trains with: its batch, ladder and learning-rate scale.

        Example:
            >>> plan = make_plan(HardwareFacts(cpu_cores=2), Settings())
            >>> plan.batch_size, plan.for_segmentation().batch_size
            (64, 8)
        """
        from dataclasses import replace

        batch = self.segment_batch_size
        return replace(self, batch_size=batch, batch_ladder=batch_ladder(batch),
                       learning_rate_scale=self.segment_learning_rate_scale,
                       reference_batch_size=self.segment_reference_batch_size)

    def fallback(self, error: BaseException) -> Plan | None:
        """The plan with its next optimisation off after ``error`` at the first step, or ``None``.

        The order is XLA first (compilation is the usual culprit), then the precision policy;
        the reason for each records the error's first line.

        Example:
            >>> turbo = Plan("gpu", "mixed_float16", True, True, None, 8, 2, -1, 64, (64,), 8,
            ...              0, "default", 1, 1.0)
            >>> turbo.fallback(RuntimeError("XLA says no")).xla
            False
        """
        from dataclasses import replace

        first_line = error_summary(error)
        if self.xla:
            note = f"xla off: the compiled first step failed ({type(error).__name__}: {first_line})"
            return replace(self, xla=False, fallbacks=(*self.fallbacks, note),
                           reasons={**self.reasons, "xla": note})
        if self.precision != "float32":
            note = (f"float32 instead of {self.precision}: the first step failed "
                    f"({type(error).__name__}: {first_line})")
            return replace(self, precision="float32", fallbacks=(*self.fallbacks, note),
                           reasons={**self.reasons, "precision": note})
        return None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["global_batch_size"] = self.global_batch_size
        return data

    def describe(self) -> str:
        """Human-readable lines: each choice and why."""
        rows = [
            ("device", self.device),
            ("precision", self.precision),
            ("xla", "on" if self.xla else "off"),
            ("memory", _memory_text(self)),
            ("threads", f"intra {self.intra_op_threads}, inter {self.inter_op_threads}"),
            ("prefetch", "AUTOTUNE" if self.prefetch < 0 else str(self.prefetch)),
            ("batch_size", f"{self.batch_size} (fallbacks {list(self.batch_ladder[1:4])})"),
            ("steps_per_execution", str(self.steps_per_execution)),
            ("strategy", f"{self.strategy} x{self.replicas}"),
            ("global_batch", f"{self.global_batch_size} = {self.batch_size} x {self.replicas}, "
                             f"lr x{self.learning_rate_scale:g}"),
            ("segment_batch", f"{self.segment_batch_size} x {self.replicas}, "
                              f"lr x{self.segment_learning_rate_scale:g}"),
        ]
        if self.workers > 1:
            rows.append(("sharding", "per worker"))
        width = max(len(name) for name, _ in rows)
        return "\n".join(
            f"{name:<{width}}  {value:<28} {self.reasons.get(_REASON_KEY.get(name, name), '')}"
            .rstrip()
            for name, value in rows
        )


# Lines TensorFlow and Keras wrap around an error's own message (headers, node names, traces).
_ERROR_WRAPPING = re.compile(
    r"^(Graph execution error|Detected at node|<stack traces|The op is created at|File \"|"
    r"Exception encountered when calling|Arguments received|\[\[|\s|\u2022)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def error_summary(error: BaseException, limit: int = 300) -> str:
    r"""The first line of ``error`` that says what went wrong, without TF/Keras wrapping.

    Example:
        >>> error_summary(RuntimeError("Graph execution error:\n\nDetected at node x\nNo kernel"))
        'No kernel'
    """
    lines = [line for line in _ANSI.sub("", str(error)).splitlines()
             if line.strip() and not _ERROR_WRAPPING.match(line)]
    return (lines[0] if lines else type(error).__name__)[:limit]


def is_out_of_memory(error: BaseException) -> bool:
    """True for TensorFlow's out-of-memory errors (GPU or host), however they surface.

    By class name and message, without importing TensorFlow: a ``ResourceExhaustedError`` (or a
    subclass), or any error whose message carries TensorFlow's OOM text (wrapped errors).

    Example:
        >>> is_out_of_memory(RuntimeError("OOM when allocating tensor")), is_out_of_memory(
        ...     ValueError("bad shape"))
        (True, False)
    """
    if any(cls.__name__ == "ResourceExhaustedError" for cls in type(error).__mro__):
        return True
    text = str(error)
    return "OOM when allocating" in text or "RESOURCE_EXHAUSTED" in text


_REASON_KEY = {"global_batch": "learning_rate"}  # describe() rows whose reason has another key


def _memory_text(plan: Plan) -> str:
    if plan.device == "cpu":
        return "host memory"
    if plan.memory_limit_mb:
        return f"limit {plan.memory_limit_mb} MB"
    return "growth" if plan.memory_growth else "allocate all"


def make_plan(facts: HardwareFacts, settings: Settings, *, replicas: int | None = None) -> Plan:
    """Decide precision, XLA, memory, threads, prefetch, batch and strategy for ``facts``.

    Pure: the same facts and settings always give the same plan. ``replicas`` overrides the
    number of devices taking part (the distribution layer passes what it really created).
    """
    reasons: dict[str, str] = {}
    gpus = facts.gpus
    device = "gpu" if gpus else "cpu"
    if not gpus:
        reasons["device"] = _why_cpu(facts)
    else:
        names = ", ".join(sorted({g.name for g in gpus}))
        reasons["device"] = f"{len(gpus)} GPU(s): {names}"

    precision = _plan_precision(gpus, settings, reasons)
    memory_growth, memory_limit = _plan_memory(gpus, settings, reasons)
    intra, inter = _plan_threads(facts, reasons)
    strategy, replica_count, workers = _plan_strategy(facts, settings, replicas, reasons)
    xla = _plan_xla(gpus, settings, replica_count, reasons)
    batch, ladder = _plan_batch(gpus, settings, reasons)

    reasons["prefetch"] = "tf.data AUTOTUNE overlaps input with training and sizes the buffer"
    if replica_count > 1:
        steps_per_execution = 1
        reasons["steps_per_execution"] = (
            "1 with several replicas: Keras 3's multi-step loop fails under tf.distribute "
            "(keras-team/keras#19246, reproduced by the plan matrix in BENCHMARKS.md)"
            + ("" if settings.steps_per_execution in ("auto", 1) else
               f"; {settings.steps_per_execution} asked"))
    elif gpus:
        steps_per_execution = 8 if settings.steps_per_execution == "auto" else (
            settings.steps_per_execution)
        reasons["steps_per_execution"] = (
            "8 steps per call amortise Python dispatch on a GPU (Keras guidance; check with "
            "`fisuras benchmark`)" if settings.steps_per_execution == "auto" else "from settings")
    else:
        steps_per_execution = 1 if settings.steps_per_execution == "auto" else (
            settings.steps_per_execution)
        reasons["steps_per_execution"] = (
            "1: on the CPU each step's compute dwarfs dispatch" if
            settings.steps_per_execution == "auto" else "from settings")

    segment_batch = _plan_segment_batch(gpus, settings, reasons)
    segment_lr_scale = linear_learning_rate_scale(segment_batch * replica_count,
                                                  settings.segment.reference_batch_size)
    host_mb = facts.memory_mb or 4096
    cache_budget = int(host_mb * 2**20 * 0.25)
    reasons["cache"] = f"decoded images cached in RAM up to 25% of host memory ({host_mb} MB)"
    global_batch = batch * replica_count
    lr_scale = linear_learning_rate_scale(global_batch, settings.detect.reference_batch_size)
    reasons["learning_rate"] = (
        f"scaled linearly: global batch {global_batch} ({batch} per replica x {replica_count} "
        f"replicas) / reference {settings.detect.reference_batch_size}"
    )

    return Plan(
        device=device,
        precision=precision,
        xla=xla,
        memory_growth=memory_growth,
        memory_limit_mb=memory_limit,
        intra_op_threads=intra,
        inter_op_threads=inter,
        prefetch=-1,
        batch_size=batch,
        batch_ladder=ladder,
        steps_per_execution=int(steps_per_execution),
        cache_budget_bytes=cache_budget,
        strategy=strategy,
        replicas=replica_count,
        learning_rate_scale=lr_scale,
        env=_plan_env(facts, device, xla, reasons),
        reasons=reasons,
        workers=workers,
        segment_batch_size=segment_batch,
        segment_learning_rate_scale=segment_lr_scale,
        reference_batch_size=settings.detect.reference_batch_size,
        segment_reference_batch_size=settings.segment.reference_batch_size,
    )


def linear_learning_rate_scale(global_batch: int, reference_batch: int) -> float:
    """The factor on a learning rate given for ``reference_batch`` when training at
    ``global_batch``: the linear scaling rule (Goyal et al., 2017), the one rule fisuras uses.

    Example:
        >>> linear_learning_rate_scale(16, 64)
        0.25
    """
    return global_batch / reference_batch


def _why_cpu(facts: HardwareFacts) -> str:
    if facts.os == "windows" and not facts.wsl2:
        return ("no GPU usable: TensorFlow has had no GPU support on native Windows since 2.11; "
                "use WSL2 (see docs/guias/GUIA_ENTRENAMIENTO_TURBO_GPU.md)")
    if facts.os == "darwin":
        return "no CUDA GPU on macOS; training runs on the CPU"
    extra = f" ({'; '.join(facts.notes)})" if facts.notes else ""
    return f"no GPU visible to TensorFlow{extra}: falling back to the CPU"


def _is_gtx16(gpu: GpuFacts) -> bool:
    return "GTX 16" in gpu.name.upper()


def _plan_precision(gpus: tuple[GpuFacts, ...], settings: Settings, reasons: dict) -> str:
    wanted = settings.gpu.enable_mixed_precision
    if not wanted:
        reasons["precision"] = "float32: mixed precision not requested (ENABLE_MIXED_PRECISION)"
        return "float32"
    if not gpus:
        reasons["precision"] = ("float32 (mixed precision requested but overridden): a CPU has "
                                "no tensor cores and emulates float16/bfloat16, which slows "
                                "training down (BENCHMARKS.md, 'Turbo before/after')")
        return "float32"
    if any(_is_gtx16(g) for g in gpus):
        reasons["precision"] = ("float32 (request overridden): GTX 16xx cards have no tensor cores "
                                "and FP16 training there is known to give NaNs")
        return "float32"
    capabilities = [g.compute_capability for g in gpus]
    if any(c is None for c in capabilities):
        reasons["precision"] = "float32 (request overridden): compute capability unknown"
        return "float32"
    lowest = min(capabilities)  # every replica must support the policy
    if lowest < TENSOR_CORE_CAPABILITY:
        reasons["precision"] = (f"float32 (request overridden): compute capability "
                                f"{lowest[0]}.{lowest[1]} < 7.0 has no tensor cores, FP16 gains "
                                "nothing")
        return "float32"
    if settings.gpu.precision == "bfloat16":
        if lowest >= BFLOAT16_CAPABILITY:
            reasons["precision"] = ("mixed_bfloat16: asked for, and compute capability >= 8.0 "
                                    "supports it (no loss scaling needed)")
            return "mixed_bfloat16"
        reasons["precision"] = "mixed_float16: bfloat16 needs compute capability 8.0+"
        return "mixed_float16"
    offer = " (bfloat16 also available: gpu.precision=bfloat16)" if lowest >= (8, 0) else ""
    reasons["precision"] = (f"mixed_float16: tensor cores (compute capability "
                            f"{lowest[0]}.{lowest[1]}), loss scaling on{offer}")
    return "mixed_float16"


def _plan_xla(gpus: tuple[GpuFacts, ...], settings: Settings, replicas: int,
              reasons: dict) -> bool:
    if not settings.gpu.enable_xla:
        reasons["xla"] = "off: not requested (ENABLE_XLA)"
        return False
    if replicas > 1:
        reasons["xla"] = ("off (request overridden) with several replicas: the compiled step "
                          "under tf.distribute failed in this project's runs (XLA known issue "
                          "'tf.Variable on a different device'; see BENCHMARKS.md, plan matrix)")
        return False
    if not gpus:
        reasons["xla"] = ("off (request overridden): XLA on the CPU slows these models' "
                          "training down (BENCHMARKS.md, 'Turbo before/after')")
        return False
    reasons["xla"] = ("on: jit_compile fuses kernels on the GPU (the seed's gain, not yet "
                      "confirmed: BENCHMARKS.md, 'Turbo before/after', GPU)")
    return True


def _plan_memory(gpus: tuple[GpuFacts, ...], settings: Settings,
                 reasons: dict) -> tuple[bool, int | None]:
    if not gpus:
        reasons["memory"] = "CPU: host memory, nothing to configure"
        return False, None
    limit = settings.gpu.memory_limit_mb
    if limit is not None:
        smallest = min((g.memory_mb for g in gpus if g.memory_mb), default=None)
        if smallest is not None and limit > smallest:
            reasons["memory"] = (f"limit {limit} MB asked is above the card's {smallest} MB; "
                                 f"capped at {smallest} MB")
            limit = smallest
        else:
            reasons["memory"] = (f"limit {limit} MB (MEMORY_LIMIT_MB); TensorFlow cannot combine "
                                 "a limit with memory growth, so growth is off")
        return False, limit
    if settings.gpu.enable_memory_growth:
        reasons["memory"] = ("growth: allocate as needed, so the desktop (WSL2/Windows) keeps its "
                             "share of a small card")
        return True, None
    reasons["memory"] = "allocate all: memory growth not requested"
    return False, None


def _plan_threads(facts: HardwareFacts, reasons: dict) -> tuple[int, int]:
    cores = max(1, facts.cpu_cores)
    inter = 1 if cores <= 2 else 2
    reasons["threads"] = (f"intra-op = {cores} cores for the math; inter-op = {inter} so "
                          "parallel ops don't oversubscribe the cores (tf.data has its own pool)")
    return cores, inter


def _plan_strategy(facts: HardwareFacts, settings: Settings, replicas: int | None,
                   reasons: dict) -> tuple[str, int, int]:
    """Strategy, replicas and workers; ``fisuras.distribute.make_strategy`` creates what this says.

    Settings ``devices`` (per machine) and ``workers`` (processes, from TF_CONFIG): GPUs of one
    machine -> MirroredStrategy; several workers -> MultiWorkerMirroredStrategy. On a machine
    without GPUs ``devices: N`` means N logical CPU devices (they share the same cores: useful for
    tests and checks, not for speed).
    """
    workers = settings.workers
    if facts.gpus:
        wanted = len(facts.gpus) if settings.devices == "all" else int(settings.devices)
        local = max(1, min(wanted, len(facts.gpus)))
        kind = f"GPU{'s' if local > 1 else ''}"
        capped = (f" (asked {wanted}, this machine has {len(facts.gpus)})"
                  if wanted > len(facts.gpus) else "")
    else:
        local = 1 if settings.devices == "all" else max(1, int(settings.devices))
        kind = "logical CPU devices sharing the same cores" if local > 1 else "CPU"
        capped = ""
    if replicas is None:
        replicas = local * workers
    if workers > 1:
        reasons["strategy"] = (f"MultiWorkerMirroredStrategy: {workers} workers (TF_CONFIG) x "
                               f"{replicas // workers} {kind}{capped}; gradients all-reduced "
                               "every step")
        reasons["sharding"] = (
            f"each worker reads its own 1/{workers} of the image files (FILE-style, tf.data "
            "HINT policy), so decoding is split too; DATA (every worker reads all, keeps its part "
            "of each batch) for a split with fewer images than one global batch")
        return "multi_worker", replicas, workers
    if replicas > 1:
        reasons["strategy"] = (f"MirroredStrategy over {replicas} {kind} of this machine"
                               f"{capped}; each global batch is split between them")
        return "mirrored", replicas, 1
    reasons["strategy"] = "one device: no distribution needed" + (
        " (devices=all found one)" if settings.devices == "all" and len(facts.gpus) == 1 else "")
    return "default", 1, 1


def _plan_batch(gpus: tuple[GpuFacts, ...], settings: Settings,
                reasons: dict) -> tuple[int, tuple[int, ...]]:
    wanted = settings.detect.batch_size
    small_card = [g.memory_mb for g in gpus if g.memory_mb and g.memory_mb < SMALL_GPU_MB]
    if small_card and wanted > SEED_BATCH_LADDER[0]:
        wanted = SEED_BATCH_LADDER[0]
        reasons["batch_size"] = (f"{wanted}: capped from {settings.detect.batch_size} on a "
                                 f"{min(small_card)} MB card (the seed's advice)")
    ladder = batch_ladder(wanted)
    if gpus:
        smallest = min((g.memory_mb for g in gpus if g.memory_mb), default=None)
        if "batch_size" in reasons:
            pass
        elif smallest is not None and smallest < SMALL_GPU_MB:
            reasons["batch_size"] = (f"{wanted} on a {smallest} MB card, the seed's advice "
                                     "(64, else 56, else 48): lowered on out-of-memory")
        else:
            reasons["batch_size"] = f"{wanted} from settings; lowered on out-of-memory"
    else:
        reasons["batch_size"] = f"{wanted} from settings (host memory is ample for it)"
    return wanted, ladder


# U-Net crops of 256 px per 4 GB of GPU memory: the decoder keeps full-resolution activations
# for every skip level, about 30x a classifier patch's; the seed's BATCH_SIZE = 64 is a
# detection figure.
SEGMENT_CROPS_PER_4GB = 8
SEGMENT_REFERENCE_SIDE = 256


def _plan_segment_batch(gpus: tuple[GpuFacts, ...], settings: Settings, reasons: dict) -> int:
    """Crops per replica for segmentation: from settings, or for the card and the crop size."""
    if settings.segment.batch_size != "auto":
        reasons["segment_batch"] = "from settings (segment.batch_size)"
        return int(settings.segment.batch_size)
    area = (SEGMENT_REFERENCE_SIDE / settings.segment.image_size) ** 2
    smallest = min((g.memory_mb for g in gpus if g.memory_mb), default=None)
    if gpus and smallest:
        cards = max(1, 2 ** int(math.log2(max(1.0, smallest / 4096))))  # 4 GB units, 1-2-4-8
        batch = int(max(2, min(64, SEGMENT_CROPS_PER_4GB * min(cards, 4) * area)))
        reasons["segment_batch"] = (
            f"{batch}: {SEGMENT_CROPS_PER_4GB} U-Net crops of {SEGMENT_REFERENCE_SIDE} px per 4 GB "
            f"(this card {smallest} MB, crops of {settings.segment.image_size} px); BATCH_SIZE "
            "is the detection batch; lowered on out-of-memory")
        return batch
    batch = int(max(2, min(32, SEGMENT_CROPS_PER_4GB * area)))
    reasons["segment_batch"] = (
        f"{batch}: on the CPU a step costs time in proportion to its crops, and more steps "
        f"learn more in the same time ({SEGMENT_CROPS_PER_4GB} crops of "
        f"{SEGMENT_REFERENCE_SIDE} px, more when smaller)")
    return batch


def _plan_env(facts: HardwareFacts, device: str, xla: bool, reasons: dict) -> dict[str, str]:
    env = {"TF_CPP_MIN_LOG_LEVEL": "2"}
    notes = ["TF_CPP_MIN_LOG_LEVEL=2 hides TF's info chatter"]
    if device == "gpu":
        env["TF_GPU_ALLOCATOR"] = "cuda_malloc_async"
        env["TF_GPU_THREAD_MODE"] = "gpu_private"
        notes.append("cuda_malloc_async allocator limits fragmentation on small cards")
        notes.append("gpu_private threads launch kernels without waiting on the input pipeline")
    elif facts.machine in ("x86_64", "amd64"):
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
        notes.append("oneDNN on: faster training on x86 CPUs (BENCHMARKS.md, "
                     "'Turbo before/after')")
    reasons["env"] = "; ".join(notes)
    return env
