"""``fisuras export``: write a trained model as Keras, SavedModel, ONNX or TFLite, and prove it.

Steps, for every format:

1. load the run with safe mode (:func:`fisuras.infer.loading.load_model`);
2. if any layer computes in float16/bfloat16 (mixed precision training), rebuild the model from
   its config with every dtype policy set to ``float32`` and copy the weights (mixed-precision
   variables are already float32, so nothing is lost). Keras 3 stores a policy per layer as
   ``{"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}``, which
   :func:`float32_config` rewrites;
3. export into a temporary folder inside ``out_dir``;
4. run the exported artefact in its own runtime (Keras load in safe mode, ``tf.saved_model.load``,
   ONNX Runtime, the TFLite interpreter) on sample inputs, and compare its logits with the float32
   Keras model's;
5. only if the largest absolute difference is within the format's tolerance, move the artefact
   into place (so a failed export never leaves a file that looks valid) and copy
   ``model_card.json`` beside it.

Tolerances (``TOLERANCES``: pass when ``max_abs_diff <= atol + rtol * max|logit|``):

* ``keras``: 1e-5 + 1e-6 rel — same kernels, same weights; in practice bit-identical.
* ``savedmodel``: 1e-4 + 1e-5 rel — same TF kernels; graph optimisation may reorder sums.
* ``onnx`` and ``tflite``: 1e-3 + 1e-4 rel — other kernels (ONNX Runtime, XNNPACK) sum in
  another order and fold BatchNorm into convolutions; float32 rounding only.
* ``tflite-fp16``: 5e-2 + 1e-2 rel — weights rounded to float16 (about 3 significant digits).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fisuras.errors import FisurasError
from fisuras.infer.loading import load_model
from fisuras.infer.outputs import OutputPathError, inside
from fisuras.infer.runners import (
    EXPORT_EXTRA_HINT,
    ExportDependencyError,
    import_onnxruntime,
    onnx_predictor,
    saved_model_predictor,
    tflite_predictor,
)
from fisuras.models.backbones import all_layers

FORMATS = ("keras", "savedmodel", "onnx", "tflite", "tflite-fp16")
ARTEFACT_NAMES = {
    "keras": "model.keras",
    "savedmodel": "saved_model",
    "onnx": "model.onnx",
    "tflite": "model.tflite",
    "tflite-fp16": "model_fp16.tflite",
}
TOLERANCES = {  # (atol, rtol), see the module docstring for why
    "keras": (1e-5, 1e-6),
    "savedmodel": (1e-4, 1e-5),
    "onnx": (1e-3, 1e-4),
    "tflite": (1e-3, 1e-4),
    "tflite-fp16": (5e-2, 1e-2),
}
ONNX_OPSET = 17  # widely supported by ONNX Runtime, TensorRT and OpenVINO releases
REDUCED_PRECISION = frozenset({"mixed_float16", "mixed_bfloat16", "float16", "bfloat16"})
SAMPLE_SEED = 0

__all__ = ["ExportDependencyError", "ExportMismatchError", "ExportResult", "export_model",
           "float32_config", "to_float32"]  # fmt: skip


class ExportMismatchError(FisurasError, ValueError):
    """The exported model's outputs differ from the original's by more than the tolerance."""


@dataclass
class ExportResult:
    """Where the export went and how closely it reproduces the model."""

    path: Path
    fmt: str
    max_abs_diff: float  # exported artefact vs the float32 Keras model, on the sample inputs
    tolerance: float = 0.0  # the bound max_abs_diff was checked against
    converted_to_float32: bool = False  # the run was a mixed-precision model
    precision_change_diff: float = 0.0  # float32 model vs the original mixed-precision model


def float32_config(node):
    """Copy of a serialised Keras config with every reduced-precision dtype set to float32.

    Example:
        >>> policy = {"class_name": "DTypePolicy", "config": {"name": "mixed_float16"}}
        >>> float32_config({"dtype": policy})["dtype"]["config"]["name"]
        'float32'
    """
    if isinstance(node, list):
        return [float32_config(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: float32_config(value) for key, value in node.items()}
    config = out.get("config")
    if (
        out.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
        and isinstance(config, dict)
        and config.get("name") in REDUCED_PRECISION
    ):
        out["config"] = {**config, "name": "float32"}
    if isinstance(out.get("dtype"), str) and out["dtype"] in REDUCED_PRECISION:
        out["dtype"] = "float32"  # plain policy names, and tensor dtypes recorded in the graph
    return out


def to_float32(model):
    """``(float32 model, converted?)``: the model itself when every layer already computes in
    float32, else a rebuild from :func:`float32_config` with the same weights."""
    import keras

    if all(layer.compute_dtype == "float32" for layer in all_layers(model)):
        return model, False
    from fisuras.hardware.apply import precision_policy

    config = float32_config(keras.saving.serialize_keras_object(model))
    # Layers without a dtype in their config (the input layer) take the global policy, which a
    # GPU plan sets to mixed precision in this process: rebuild under float32.
    with precision_policy("float32"):
        rebuilt = keras.saving.deserialize_keras_object(config, safe_mode=True)
    rebuilt.set_weights([np.asarray(w, dtype=np.float32) for w in model.get_weights()])
    still_reduced = [x.name for x in all_layers(rebuilt) if x.compute_dtype != "float32"]
    if still_reduced:
        raise ValueError(f"could not convert layers {still_reduced} to float32")
    return rebuilt, True


def export_model(
    run_or_model_path: str | Path,
    fmt: str,
    out_dir: str | Path,
    sample_inputs: np.ndarray | None = None,
) -> ExportResult:
    """Export a fisuras run in ``fmt`` into ``out_dir`` and check it reproduces the model.

    ``sample_inputs`` are float32 ``[N, S, S, 3]`` images in 0..255; by default two seeded
    random images of the model's size.

    Example:
        >>> result = export_model("runs/segment-001", "onnx", "exported")  # doctest: +SKIP
        >>> result.path.name, result.max_abs_diff < 1e-3  # doctest: +SKIP
        ('model.onnx', True)
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        _require_onnx_tools()
    loaded = load_model(run_or_model_path)
    out_dir = Path(out_dir)
    target = inside(out_dir, ARTEFACT_NAMES[fmt])
    if target == loaded.path.resolve():
        raise OutputPathError(f"{out_dir}: exporting here would overwrite the source "
                              f"{loaded.path}")
    model, converted = to_float32(loaded.model)
    image_shape = _image_shape(model, loaded.card.image_size)
    samples = _sample_inputs(sample_inputs, image_shape)
    reference = np.asarray(model.predict_on_batch(samples), dtype=np.float32)
    precision_change = 0.0
    if converted:
        original = np.asarray(loaded.model.predict_on_batch(samples), dtype=np.float32)
        precision_change = float(np.max(np.abs(original - reference)))

    out_dir.mkdir(parents=True, exist_ok=True)
    atol, rtol = TOLERANCES[fmt]
    tolerance = atol + rtol * float(np.max(np.abs(reference)))
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as work:
        artefact = WRITERS[fmt](model, Path(work), image_shape)
        exported = np.asarray(RUNNERS[fmt](artefact)(samples), dtype=np.float32)
        if exported.shape != reference.shape:
            raise ExportMismatchError(
                f"{fmt} export of {loaded.path} returns shape {exported.shape}, "
                f"the model {reference.shape}"
            )
        max_abs_diff = float(np.max(np.abs(exported - reference)))
        if not max_abs_diff <= tolerance:  # also catches NaN
            raise ExportMismatchError(
                f"{fmt} export of {loaded.path} differs from the model by {max_abs_diff:.3g} "
                f"(tolerance {tolerance:.3g}); nothing was written."
            )
        _move_into_place(artefact, target, Path(work))
    loaded.card.save(out_dir)
    return ExportResult(target, fmt, max_abs_diff, tolerance, converted, precision_change)


def _require_onnx_tools() -> None:
    try:
        import tf2onnx  # noqa: F401
    except ImportError as error:
        raise ExportDependencyError(
            f"ONNX export needs tf2onnx, which is not installed: {EXPORT_EXTRA_HINT}"
        ) from error
    import_onnxruntime()


def _image_shape(model, card_size: int) -> tuple:
    """``(H, W, 3)`` of the model input; None sides (fully convolutional) take the card's size."""
    _, height, width, channels = model.input_shape
    return height or card_size, width or card_size, channels


def _sample_inputs(sample_inputs: np.ndarray | None, image_shape: tuple) -> np.ndarray:
    if sample_inputs is None:
        rng = np.random.default_rng(SAMPLE_SEED)
        return rng.uniform(0.0, 255.0, (2, *image_shape)).astype(np.float32)
    samples = np.asarray(sample_inputs, dtype=np.float32)
    if samples.ndim != 4 or samples.shape[1:] != tuple(image_shape):
        raise ValueError(
            f"sample_inputs must be [N, {image_shape[0]}, {image_shape[1]}, 3]; "
            f"got {samples.shape}"
        )
    return samples


def _input_signature(image_shape: tuple):
    import tensorflow as tf

    return (tf.TensorSpec((None, *image_shape), tf.float32, name="image"),)


def _write_keras(model, work: Path, image_shape: tuple) -> Path:
    path = work / ARTEFACT_NAMES["keras"]
    model.save(path)
    return path


def _write_saved_model(model, work: Path, image_shape: tuple) -> Path:
    path = work / ARTEFACT_NAMES["savedmodel"]
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


def _write_onnx(model, work: Path, image_shape: tuple) -> Path:
    """tf2onnx's ``from_function`` on a tf.function of the model: works with Keras 3, whose
    models are not the tf.keras models ``tf2onnx.convert.from_keras`` was written for.
    The ONNX graph has input ``image`` (float32, any batch size) and output ``logits``."""
    import tensorflow as tf
    import tf2onnx

    signature = _input_signature(image_shape)

    @tf.function(input_signature=signature)
    def serve(image):
        return {"logits": model(image, training=False)}

    path = work / ARTEFACT_NAMES["onnx"]
    tf2onnx.convert.from_function(
        serve, input_signature=signature, opset=ONNX_OPSET, output_path=str(path)
    )
    return path


def _tflite_writer(float16: bool) -> Callable[[object, Path, tuple], Path]:
    def write(model, work: Path, image_shape: tuple) -> Path:
        """Convert from a SavedModel export: the TFLite converter's reliable Keras 3 route (a
        concrete function of the model keeps variables unfrozen and yields garbage here)."""
        import tensorflow as tf

        source = _write_saved_model(model, work / "tflite-source", image_shape)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(source))
        if float16:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        path = work / ARTEFACT_NAMES["tflite-fp16" if float16 else "tflite"]
        path.write_bytes(converter.convert())
        return path

    return write


def _run_keras(path: Path):
    """Reload the written file as a user would: safe mode, fisuras layers registered."""
    from fisuras.models.saving import load_keras_model

    return load_keras_model(path, compile=False).predict_on_batch


WRITERS = {
    "keras": _write_keras,
    "savedmodel": _write_saved_model,
    "onnx": _write_onnx,
    "tflite": _tflite_writer(float16=False),
    "tflite-fp16": _tflite_writer(float16=True),
}
RUNNERS = {
    "keras": _run_keras,
    "savedmodel": saved_model_predictor,
    "onnx": onnx_predictor,
    "tflite": tflite_predictor,
    "tflite-fp16": tflite_predictor,
}


def _move_into_place(artefact: Path, target: Path, work: Path) -> None:
    """Replace ``target`` by ``artefact`` (a file, or a SavedModel folder) in one rename."""
    if artefact.is_dir() and target.exists():
        # os.replace cannot overwrite a non-empty folder: move the old one into the temp folder
        # (deleted with it) first. The gap between the two renames is a few microseconds.
        os.replace(target, work / "previous")
    os.replace(artefact, target)
