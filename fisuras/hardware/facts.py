"""Hardware facts: what this machine has, read once, as plain data the planner can reason about.

Before TensorFlow is imported the GPUs are read from ``nvidia-smi`` (present on Linux, WSL2 and
Windows drivers); after, from TensorFlow itself, which also tells whether TF can *use* them.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from fisuras.errors import FisurasError


@dataclass(frozen=True)
class GpuFacts:
    """One GPU: its name, CUDA compute capability (major, minor) and memory in MiB."""

    name: str
    compute_capability: tuple[int, int] | None = None
    memory_mb: int | None = None


@dataclass(frozen=True)
class HardwareFacts:
    """Everything the plan needs to know about the machine.

    Example:
        >>> laptop = HardwareFacts(gpus=(GpuFacts("NVIDIA GeForce RTX 2050", (8, 6), 4096),),
        ...                        cpu_cores=8, os="linux", wsl2=True)
        >>> laptop.has_gpu
        True
    """

    gpus: tuple[GpuFacts, ...] = ()
    cpu_cores: int = 1
    os: str = "linux"  # "linux" | "windows" | "darwin"
    wsl2: bool = False
    machine: str = "x86_64"
    memory_mb: int | None = None
    source: str = "described"  # "described" | "nvidia-smi" | "tensorflow" | "none"
    notes: tuple[str, ...] = field(default=())

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def to_dict(self) -> dict:
        return asdict(self)


def detect_facts(*, use_tensorflow: bool | None = None) -> HardwareFacts:
    """Read this machine's facts.

    ``use_tensorflow=None`` asks TensorFlow only when it is already imported, so calling this
    before ``import tensorflow`` leaves TF untouched (environment variables still take effect).
    """
    if use_tensorflow is None:
        use_tensorflow = "tensorflow" in sys.modules
    notes: list[str] = []
    gpus: tuple[GpuFacts, ...] = ()
    source = "none"
    if use_tensorflow:
        gpus, note = _gpus_from_tensorflow()
        source = "tensorflow"
        if note:
            notes.append(note)
    else:
        smi = gpus_from_nvidia_smi()
        if smi is not None:
            gpus, source = smi, "nvidia-smi"
    return HardwareFacts(
        gpus=gpus,
        cpu_cores=_cpu_cores(),
        os=_os_name(),
        wsl2=is_wsl2(),
        machine=platform.machine().lower() or "unknown",
        memory_mb=_memory_mb(),
        source=source,
        notes=tuple(notes),
    )


def is_wsl2() -> bool:
    """True inside WSL2 (its kernel names itself 'microsoft'; /dev/dxg is the GPU bridge)."""
    if os.path.exists("/dev/dxg"):
        return True
    try:
        with open("/proc/version", encoding="utf-8") as handle:
            return "microsoft" in handle.read().lower()
    except OSError:
        return False


def nvidia_smi_path() -> str | None:
    """``nvidia-smi`` on PATH, or WSL2's copy in /usr/lib/wsl/lib."""
    found = shutil.which("nvidia-smi")
    if found:
        return found
    wsl_copy = "/usr/lib/wsl/lib/nvidia-smi"
    return wsl_copy if os.path.exists(wsl_copy) else None


def gpus_from_nvidia_smi() -> tuple[GpuFacts, ...] | None:
    """GPUs as ``nvidia-smi`` reports them, or None when it is absent or fails."""
    smi = nvidia_smi_path()
    if smi is None:
        return None
    try:
        output = subprocess.run(
            [smi, "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=15, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return tuple(parse_nvidia_smi_csv(output))


def parse_nvidia_smi_csv(text: str) -> list[GpuFacts]:
    """Parse ``name, compute_cap, memory.total`` CSV lines (pure, for tests).

    Example:
        >>> parse_nvidia_smi_csv("NVIDIA GeForce RTX 2050, 8.6, 4096\\n")
        [GpuFacts(name='NVIDIA GeForce RTX 2050', compute_capability=(8, 6), memory_mb=4096)]
    """
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0]:
            continue
        capability = None
        if "." in parts[1]:
            major, minor = parts[1].split(".", 1)
            if major.isdigit() and minor.isdigit():
                capability = (int(major), int(minor))
        memory = int(float(parts[2])) if parts[2].replace(".", "", 1).isdigit() else None
        gpus.append(GpuFacts(parts[0], capability, memory))
    return gpus


class GpuDescriptionError(FisurasError, ValueError):
    """A GPU described on the command line (``--gpu NAME,CC,MIB``) could not be read."""


def gpu_from_text(text: str) -> GpuFacts:
    """A GPU described as ``"name,major.minor,MiB"`` (nvidia-smi's CSV fields), strictly checked.

    Example:
        >>> gpu_from_text("RTX 2050,8.6,4096")
        GpuFacts(name='RTX 2050', compute_capability=(8, 6), memory_mb=4096)
    """
    parsed = parse_nvidia_smi_csv(text)
    gpu = parsed[0] if len(parsed) == 1 else None
    if gpu is None or gpu.compute_capability is None or gpu.memory_mb is None \
            or len(text.split(",")) != 3:
        raise GpuDescriptionError(f"GPU {text!r}: expected 'name,compute capability,MiB', e.g. "
                         "'RTX 2050,8.6,4096' (nvidia-smi --query-gpu=name,compute_cap,"
                         "memory.total --format=csv,noheader,nounits prints yours)")
    return gpu


def described(base: HardwareFacts, gpus: tuple[GpuFacts, ...], *,
              wsl2: bool | None = None) -> HardwareFacts:
    """``base`` (usually this machine's facts) with described GPUs: a preview of another machine.

    The CPU facts stay ``base``'s; ``wsl2`` replaces base's when given.
    """
    from dataclasses import replace

    return replace(base, gpus=tuple(gpus), wsl2=base.wsl2 if wsl2 is None else wsl2,
                   os="linux" if wsl2 else base.os, source="described", notes=())


def _gpus_from_tensorflow() -> tuple[tuple[GpuFacts, ...], str | None]:
    import tensorflow as tf

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(
            GpuFacts(
                name=details.get("device_name", device.name),
                compute_capability=details.get("compute_capability"),
                memory_mb=_memory_from_smi(details.get("device_name")),
            )
        )
    note = None
    if not gpus and not tf.test.is_built_with_cuda():
        note = "this TensorFlow build has no CUDA support"
    return tuple(gpus), note


def _memory_from_smi(name: str | None) -> int | None:
    # TF does not report total memory before a device is initialised; nvidia-smi does.
    for gpu in gpus_from_nvidia_smi() or ():
        if name is None or gpu.name == name:
            return gpu.memory_mb
    return None


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _os_name() -> str:
    name = platform.system().lower()
    return {"linux": "linux", "windows": "windows", "darwin": "darwin"}.get(name, name)


def _memory_mb() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total / 2**20)
    except ImportError:
        return None
