"""``fisuras doctor``: one line per check, pass / warn / fail, each with a fix.

The exit code is 0 when the machine can train (a CPU-only machine is a warning), non-zero when
something is broken (TensorFlow missing, a device that fails a real computation, a driver TF
cannot use).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass

from fisuras.hardware.facts import HardwareFacts, is_wsl2, nvidia_smi_path

PASS, WARN, FAIL = "pass", "warn", "fail"
SUPPORTED_TF = "2.21"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    status: str  # pass | warn | fail
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f"  -> {self.fix}" if self.fix and self.status != PASS else ""
        return f"[{self.status.upper():4}] {self.name}: {self.detail}{fix}"


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed, 1 otherwise."""
    return 1 if any(c.status == FAIL for c in checks) else 0


def format_report(checks: list[Check]) -> str:
    return "\n".join(c.line() for c in checks)


def run_checks() -> list[Check]:
    """Run every check on this machine (imports TensorFlow)."""
    checks = [check_python()]
    try:
        import keras
        import tensorflow as tf
    except ImportError as error:
        checks.append(Check("tensorflow", FAIL, f"cannot import ({error})",
                            "pip install -e . (or `make demo`, which creates .venv)"))
        return checks
    checks.append(check_versions(tf.__version__, keras.__version__))
    checks.append(check_cuda_build(tf.sysconfig.get_build_info()))
    gpus = tf.config.list_physical_devices("GPU")
    checks.append(check_gpus(gpus, tf))
    checks.extend(check_platform(has_gpu=bool(gpus)))
    checks.extend(check_devices(tf))
    return checks


def check_python() -> Check:
    version = platform.python_version()
    if sys.version_info >= (3, 11):  # noqa: UP036 (an old interpreter may run this)
        return Check("python", PASS, version)
    return Check("python", FAIL, f"{version} is too old", "install Python 3.11 or newer")


def check_versions(tf_version: str, keras_version: str) -> Check:
    detail = f"TensorFlow {tf_version}, Keras {keras_version}"
    if not keras_version.startswith("3."):
        return Check("tensorflow/keras", FAIL, detail,
                     "fisuras needs Keras 3: pip install 'keras>=3'")
    if not tf_version.startswith(SUPPORTED_TF):
        return Check("tensorflow/keras", WARN, detail + f" (tested with {SUPPORTED_TF})",
                     f"pip install 'tensorflow=={SUPPORTED_TF}.*'")
    return Check("tensorflow/keras", PASS, detail)


def check_cuda_build(build: dict) -> Check:
    if not build.get("is_cuda_build"):
        return Check("cuda build", WARN, "this TensorFlow has no CUDA support (CPU only)",
                     "on Linux/WSL2: pip install -e '.[gpu]' (tensorflow[and-cuda])")
    detail = f"CUDA {build.get('cuda_version')}, cuDNN {build.get('cudnn_version')}"
    return Check("cuda build", PASS, detail)


def check_gpus(gpus: list, tf) -> Check:
    if not gpus:
        fix = ("training runs on the CPU (slower); for a GPU see "
               "docs/guias/GUIA_ENTRENAMIENTO_TURBO_GPU.md")
        if nvidia_smi_path():
            return Check("gpus", FAIL, "nvidia-smi sees a GPU but TensorFlow does not",
                         "pip install -e '.[gpu]' so TF gets its CUDA libraries; then re-run")
        return Check("gpus", WARN, "no GPU visible: CPU only", fix)
    parts = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        cc = details.get("compute_capability")
        cc_text = f"{cc[0]}.{cc[1]}" if cc else "?"
        parts.append(f"{details.get('device_name', gpu.name)} (compute {cc_text})")
    return Check("gpus", PASS, "; ".join(parts))


def check_platform(*, has_gpu: bool, facts: HardwareFacts | None = None) -> list[Check]:
    """Native Windows, WSL2 signs and nvidia-smi."""
    checks = []
    system = platform.system().lower() if facts is None else facts.os
    if system == "windows":
        checks.append(Check("platform", WARN,
                            "native Windows: TensorFlow has no GPU here since 2.11",
                            "use WSL2 (Ubuntu) for GPU training; see the guide"))
    elif is_wsl2():
        signs = {"/dev/dxg": os.path.exists("/dev/dxg"),
                 "/usr/lib/wsl/lib/libcuda.so": os.path.exists("/usr/lib/wsl/lib/libcuda.so")}
        missing = [path for path, found in signs.items() if not found]
        if missing:
            checks.append(Check("wsl2", WARN, f"WSL2 without {', '.join(missing)}",
                                "install the NVIDIA Windows driver (not a Linux one) and "
                                "`wsl --update`"))
        else:
            checks.append(Check("wsl2", PASS, "WSL2 with /dev/dxg and the WSL libcuda"))
    else:
        checks.append(Check("platform", PASS, f"{platform.system()} {platform.machine()}"))
    smi = nvidia_smi_path()
    if smi is None:
        checks.append(Check("nvidia-smi", PASS if not has_gpu else WARN, "not found",
                            "" if not has_gpu else "install the NVIDIA driver utilities"))
    else:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=15, check=True).stdout.strip()
            checks.append(Check("nvidia-smi", PASS, out.replace("\n", "; ")))
        except (OSError, subprocess.SubprocessError) as error:
            checks.append(Check("nvidia-smi", FAIL, f"present but failed ({error})",
                                "reinstall or update the NVIDIA driver"))
    return checks


def check_devices(tf) -> list[Check]:
    """A tiny real matrix product on every device, compared with the CPU's float64 answer."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 64)).astype("float32")
    expected = a.astype("float64") @ a.astype("float64")
    checks = []
    devices = tf.config.list_logical_devices("CPU")[:1] + tf.config.list_logical_devices("GPU")
    for device in devices:
        try:
            with tf.device(device.name):
                got = tf.linalg.matmul(tf.constant(a), tf.constant(a)).numpy()
            error = float(np.max(np.abs(got - expected)))
            status = PASS if error < 1e-2 else FAIL
            checks.append(Check(f"compute {device.name}", status,
                                f"64x64 matmul, max error {error:.1e}",
                                "" if status == PASS else "the device returns wrong numbers: "
                                "check driver and CUDA versions"))
        except Exception as error:  # a broken device must show as a failed line, not a crash
            checks.append(Check(f"compute {device.name}", FAIL, f"failed: {error}",
                                "check the driver/CUDA install with nvidia-smi"))
    return checks
