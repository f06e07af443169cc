"""Every export format runs in its own runtime and reproduces the model; mixed precision ->
float32."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fisuras.infer import export
from fisuras.infer.export import (
    FORMATS,
    TOLERANCES,
    ExportDependencyError,
    ExportMismatchError,
    export_model,
)
from fisuras.infer.loading import load_model
from fisuras.infer.runners import (
    onnx_predictor,
    saved_model_predictor,
    tflite_predictor,
)
from fisuras.models.backbones import all_layers
from fisuras.models.card import ModelCard

from .conftest import keras, save_run

RUNTIMES = {
    "keras": lambda path: load_model(path.parent).model.predict_on_batch,
    "savedmodel": saved_model_predictor,
    "onnx": onnx_predictor,
    "tflite": tflite_predictor,
    "tflite-fp16": tflite_predictor,
}


@pytest.fixture(scope="module")
def real_crops(cfd_image) -> np.ndarray:
    """Three 64 px crops of a real photo: inputs the export itself never saw."""
    corners = ((0, 0), (100, 200), (250, 400))
    return np.stack([cfd_image[y : y + 64, x : x + 64] for y, x in corners])


@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory) -> dict:
    """The U-Net run exported once in every format (conversions take seconds each)."""
    root = tmp_path_factory.mktemp("exports")
    return {fmt: export_model(runs["segmenter"], fmt, root / fmt) for fmt in FORMATS}


@pytest.mark.slow  # converts the model to every format once: half a minute
@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_runs_and_matches(exports, runs, real_crops, fmt):
    result = exports[fmt]
    assert result.path.exists() and result.fmt == fmt
    assert result.max_abs_diff <= result.tolerance
    assert ModelCard.load(result.path.parent).task == "segment"  # the card travels along

    # independent check on real pixels, through the runtime a user would use
    original = load_model(runs["segmenter"]).model.predict_on_batch(real_crops)
    exported = RUNTIMES[fmt](result.path)(real_crops)
    atol, rtol = TOLERANCES[fmt]
    assert exported.shape == original.shape == (3, 64, 64, 1)
    assert np.abs(exported - original).max() <= atol + rtol * np.abs(original).max()


def nested_segmenter(size: int):
    """The shape of a fisuras model (encoder nested as sub-model "backbone", BatchNorm, float32
    head), small enough to export in a second; mobilenet_v2 itself was checked by hand."""
    keras.utils.set_random_seed(3)
    encoder_in = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(encoder_in)
    x = keras.layers.BatchNormalization()(x)
    encoder = keras.Model(encoder_in, keras.layers.ReLU()(x), name="backbone")
    images = keras.Input((size, size, 3))
    x = encoder(keras.layers.Rescaling(1 / 127.5, offset=-1)(images), training=False)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    return keras.Model(images, keras.layers.Conv2D(1, 1, dtype="float32")(x))


@pytest.fixture
def mixed_precision_run(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = nested_segmenter(64)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert any(layer.compute_dtype == "float16" for layer in all_layers(model))
    return save_run(tmp_path / "mixed", model, "segment", 64)


def test_mixed_precision_model_exports_as_float32(tmp_path, mixed_precision_run, real_crops):
    result = export_model(mixed_precision_run, "keras", tmp_path / "keras")
    assert result.converted_to_float32
    exported = load_model(tmp_path / "keras").model
    assert {layer.compute_dtype for layer in all_layers(exported)} == {"float32"}
    # the float32 model computes what the float16 one approximated: close, not equal
    original = load_model(mixed_precision_run).model
    logits16 = original.predict_on_batch(real_crops)
    logits32 = exported.predict_on_batch(real_crops)
    assert 0 < np.abs(logits32 - logits16).max() < 0.05 * max(1.0, np.abs(logits32).max())
    assert 0 < result.precision_change_diff < 0.05 * max(1.0, np.abs(logits32).max())

    onnx = pytest.importorskip("onnx")
    onnx_result = export_model(mixed_precision_run, "onnx", tmp_path / "onnx")
    graph = onnx.load(str(onnx_result.path)).graph
    float_types = {init.data_type for init in graph.initializer} - {onnx.TensorProto.INT64}
    assert float_types == {onnx.TensorProto.FLOAT}  # no float16 weights left
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_a_mismatch_raises_and_leaves_nothing(tmp_path, runs, monkeypatch):
    monkeypatch.setitem(export.TOLERANCES, "keras", (-1.0, 0.0))  # even a perfect copy fails
    out = tmp_path / "out"
    with pytest.raises(ExportMismatchError, match="keras export .* differs"):
        export_model(runs["dark_segmenter"], "keras", out)
    assert list(out.iterdir()) == []


def test_missing_onnx_tools_say_how_to_install(tmp_path, runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # makes `import tf2onnx` fail
    with pytest.raises(ExportDependencyError, match=r"pip install fisuras\[export\]"):
        export_model(runs["segmenter"], "onnx", tmp_path / "out")


def test_bad_requests_are_refused(tmp_path, runs):
    run = runs["dark_segmenter"]
    with pytest.raises(ValueError, match="unknown export format"):
        export_model(run, "pytorch", tmp_path)
    with pytest.raises(ValueError, match="overwrite the source"):
        export_model(run, "keras", run)
    with pytest.raises(ValueError, match="sample_inputs"):
        export_model(run, "keras", tmp_path, sample_inputs=np.zeros((1, 32, 32, 3)))
