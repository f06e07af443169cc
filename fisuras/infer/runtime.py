"""Which runtime ``fisuras predict`` runs a model in: Keras, or ONNX Runtime on its ``model.onnx``.

* ``keras``: always Keras.
* ``onnx``: ONNX Runtime. When no up-to-date ``model.onnx`` is beside ``model.keras`` (missing, or
  exported from another ``model.keras``: its ``model.onnx.json`` records the SHA-256 of the file
  it came from), one is exported there first and checked against Keras
  (:func:`fisuras.infer.export.export_model`, tolerance ``TOLERANCES["onnx"]``).
* ``auto`` (the default): ONNX Runtime when onnxruntime imports *and* an up-to-date
  ``model.onnx`` is already there, else Keras. Auto never exports: predicting must not write into
  a user's run folder unasked.

Either way the Keras model is loaded (safe mode): its card gives the threshold and image size and
the network is checked against the card; the ONNX file is the same network exported.

Example:
    >>> choose_runtime("auto", onnxruntime_available=True, onnx_file_ready=True)[0]
    'onnx'
    >>> choose_runtime("auto", onnxruntime_available=True, onnx_file_ready=False)[0]
    'keras'
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fisuras.files import file_sha256, write_json
from fisuras.infer.loading import LoadedModel
from fisuras.infer.runners import (
    EXPORT_EXTRA_HINT,
    ExportDependencyError,
    import_onnxruntime,
    keras_predictor,
    onnx_predictor,
)
from fisuras.infer.tiling import PredictBatch

RUNTIMES = ("auto", "keras", "onnx")

__all__ = ["RUNTIMES", "PreparedRuntime", "choose_runtime", "export_onnx", "onnx_file",
           "onnx_file_ready", "onnxruntime_available", "prepare_runtime"]  # fmt: skip


def choose_runtime(
    requested: str, onnxruntime_available: bool, onnx_file_ready: bool
) -> tuple[str, str]:
    """``(runtime, reason)`` for a requested runtime; ``runtime`` is ``"keras"`` or ``"onnx"``.

    ``onnx`` with ``onnx_file_ready`` False means: export ``model.onnx`` first (the caller does).
    Raises :class:`ExportDependencyError` when ``onnx`` is asked for without onnxruntime.

    Example:
        >>> choose_runtime("keras", onnxruntime_available=True, onnx_file_ready=True)
        ('keras', 'asked for Keras')
        >>> choose_runtime("auto", onnxruntime_available=False, onnx_file_ready=True)[1]
        'auto: onnxruntime is not installed (pip install fisuras[export])'
    """
    if requested == "keras":
        return "keras", "asked for Keras"
    if requested == "onnx":
        if not onnxruntime_available:
            raise ExportDependencyError(
                f"--runtime onnx needs the onnxruntime package, which is not installed: "
                f"{EXPORT_EXTRA_HINT}"
            )
        if onnx_file_ready:
            return "onnx", "asked for ONNX Runtime; model.onnx is up to date"
        return "onnx", ("asked for ONNX Runtime; model.onnx exported (missing, or not from "
                        "this model.keras)")
    if requested != "auto":
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {requested!r}")
    if not onnxruntime_available:
        return "keras", f"auto: onnxruntime is not installed ({EXPORT_EXTRA_HINT})"
    if not onnx_file_ready:
        return "keras", ("auto: no up-to-date model.onnx beside model.keras (missing, or not "
                         "from this model.keras); --runtime onnx exports one")
    return "onnx", "auto: onnxruntime is installed and model.onnx is up to date"


def onnxruntime_available() -> bool:
    """Whether ``import onnxruntime`` works (the optional extra ``fisuras[export]``)."""
    try:
        import_onnxruntime()
    except ExportDependencyError:
        return False
    return True


def onnx_file(model_file: str | Path) -> Path:
    """The ONNX file that belongs beside a Keras model file: ``model.keras`` -> ``model.onnx``."""
    return Path(model_file).with_suffix(".onnx")


def onnx_source_file(model_file: str | Path) -> Path:
    """Where the export records which ``model.keras`` it came from: ``model.onnx.json``."""
    return Path(model_file).with_suffix(".onnx.json")


def onnx_file_ready(model_file: str | Path) -> bool:
    """``model.onnx`` exists beside ``model_file`` and was exported from these very bytes.

    A model trained again (or resumed) rewrites ``model.keras``, which leaves an ONNX file that
    no longer is the same network. File times cannot tell (a git checkout or a copy sets them in
    any order), so the export records the SHA-256 of its source and this compares it.
    """
    onnx, record = onnx_file(model_file), onnx_source_file(model_file)
    if not (onnx.is_file() and record.is_file()):
        return False
    try:
        recorded = json.loads(record.read_text(encoding="utf-8")).get("source_sha256")
    except (ValueError, AttributeError):  # a torn or foreign file: export again
        return False
    return recorded == file_sha256(model_file)


def export_onnx(model_file: str | Path):
    """Export ``model_file`` (a ``.keras``) to the ONNX file beside it, checked against Keras.

    Returns the :class:`fisuras.infer.export.ExportResult` (``path`` is the ONNX file). The export
    goes through a temporary folder next to the model and is renamed into place, so the folder's
    ``model_card.json`` is left as it is and a failed export leaves nothing behind.
    """
    from fisuras.infer.export import export_model

    model_file = Path(model_file)
    target = onnx_file(model_file)
    source = file_sha256(model_file)
    with tempfile.TemporaryDirectory(prefix=".onnx-export-", dir=model_file.parent) as work:
        result = export_model(model_file, "onnx", work)
        os.replace(result.path, target)
    write_json(onnx_source_file(model_file), {"source": model_file.name, "source_sha256": source,
                                              "max_abs_diff": result.max_abs_diff})
    result.path = target
    return result


@dataclass
class PreparedRuntime:
    """A model's ``predict_batch`` in the chosen runtime, and why that runtime."""

    predict_batch: PredictBatch
    runtime: str  # "keras" or "onnx"
    reason: str
    onnx_path: Path | None = None

    def describe(self) -> dict:
        """What goes into report.json's settings."""
        described = {"used": self.runtime, "reason": self.reason}
        if self.onnx_path is not None:
            described["onnx_file"] = str(self.onnx_path)
        return described


def prepare_runtime(
    loaded: LoadedModel,
    requested: str = "auto",
    *,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> PreparedRuntime:
    """Choose the runtime for ``loaded`` (:func:`choose_runtime`), export ``model.onnx`` when
    ``onnx`` needs one (saying so through ``log``), and build its ``predict_batch``.

    ``threads`` sets ONNX Runtime's intra-op threads; None keeps its default.
    """
    ready = onnx_file_ready(loaded.path)
    runtime, reason = choose_runtime(requested, onnxruntime_available(), ready)
    if runtime == "keras":
        return PreparedRuntime(keras_predictor(loaded.model), "keras", reason)
    path = onnx_file(loaded.path)
    if not ready:
        result = export_onnx(loaded.path)
        log(f"exported {result.path} for ONNX Runtime (checked against Keras: max diff "
            f"{result.max_abs_diff:.2g})")
        reason = f"{reason}; checked against Keras: max diff {result.max_abs_diff:.2g}"
    return PreparedRuntime(onnx_predictor(path, threads=threads), "onnx", reason, path)
