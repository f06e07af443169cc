"""What a benchmark process reads off while it trains: call times, GPU use, peak memory.

Imports Keras (and so TensorFlow): the worker imports this module only after it has set the
environment variables of the configuration.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf


class StepClock(keras.callbacks.Callback):
    """Wall time of every training call; GPU sampling over the calls after the warm-up.

    Reading the loss forces the call to finish (GPU work is asynchronous), so each time stamp
    is the real end of that call. With ``steps_per_execution`` k, one call runs k steps.
    """

    def __init__(self, warmup_calls: int,
                 start_sampler: Callable[[], GpuSampler | None] | None = None):
        super().__init__()
        if warmup_calls < 1:
            raise ValueError(f"warmup_calls must be >= 1 (the first call compiles), got "
                             f"{warmup_calls}")
        self.warmup_calls = warmup_calls
        self.start_sampler = start_sampler or (lambda: None)
        self.first_begin: float | None = None
        self.ends: list[float] = []
        self.cpu_at: list[float] = []  # this process's CPU seconds (all threads) at each end
        self.gpu_utilisation: float | None = None
        self._sampler: GpuSampler | None = None

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.first_begin is None:
            self.first_begin = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if logs and "loss" in logs:
            float(logs["loss"])  # wait for the device
        self.ends.append(time.perf_counter())
        self.cpu_at.append(time.process_time())
        if len(self.ends) == self.warmup_calls:
            self._sampler = self.start_sampler()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._sampler is not None:
            self.gpu_utilisation = self._sampler.stop()

    def first_call_seconds(self) -> float:
        """The first call: tracing, (XLA) compilation and its own steps."""
        if self.first_begin is None or not self.ends:
            raise RuntimeError("no training call ran")
        return self.ends[0] - self.first_begin

    def measured_seconds(self) -> float:
        """From the end of the last warm-up call to the end of the last call."""
        if len(self.ends) <= self.warmup_calls:
            raise RuntimeError(f"only {len(self.ends)} training calls ran; expected more than "
                               f"{self.warmup_calls} warm-up calls")
        return self.ends[-1] - self.ends[self.warmup_calls - 1]

    def cores_used(self) -> float:
        """CPU seconds per second over the measured calls: about the core count when nothing
        else competes for the cores, lower when other processes take their share."""
        cpu = self.cpu_at[-1] - self.cpu_at[self.warmup_calls - 1]
        return cpu / self.measured_seconds()


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
