"""What a benchmark process reads off while it trains: GPU use, peak memory, applied settings.

Call times come from :class:`fisuras.train.callbacks.StepClock`.

Imports Keras (and so TensorFlow): the worker imports this module only after it has set the
environment variables of the configuration.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import keras
import tensorflow as tf


class GpuSampler:
    """Mean GPU utilisation (%) from NVML, sampled in a thread every ``interval`` seconds."""

    def __init__(self, nvml: Any, handle: Any, interval: float = 0.2):
        self._nvml, self._handle, self._interval = nvml, handle, interval
        self._samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @classmethod
    def start_if_available(cls) -> GpuSampler | None:
        """A running sampler, or None without NVML (pip nvidia-ml-py), a driver or a GPU."""
        if not tf.config.list_physical_devices("GPU"):
            return None
        try:
            import pynvml

            pynvml.nvmlInit()
            return cls(pynvml, pynvml.nvmlDeviceGetHandleByIndex(0))
        except Exception:  # the table then says n/a
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
            self._stop.wait(self._interval)

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        return sum(self._samples) / len(self._samples) if self._samples else None


def peak_memory() -> tuple[float, str]:
    """(MB, kind): TensorFlow's peak on the first GPU ("gpu"), else this process's peak RSS
    ("host")."""
    if tf.config.list_physical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, "gpu"
    return host_peak_rss_mb(), "host"


def host_peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (getrusage on Linux/macOS, psutil elsewhere)."""
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes there, KiB here


def onednn_enabled() -> bool | None:
    """Whether TensorFlow's oneDNN custom operations are on in this process (None: unknown).

    TensorFlow decides at start-up from ``TF_ENABLE_ONEDNN_OPTS`` and the CPU's features; the
    answer is only exposed through a private module, hence the guard.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None


def applied_state(model: keras.Model) -> dict[str, Any]:
    """What TensorFlow really ran with, so each JSON row shows its own process's settings."""
    return {
        "policy": keras.mixed_precision.global_policy().name,
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": int(model.steps_per_execution),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "global_jit": bool(tf.config.optimizer.get_jit()),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(TF default)"),
        "onednn": onednn_enabled(),
        "tensorflow": tf.__version__,
        "pid": os.getpid(),
    }
