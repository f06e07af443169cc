"""``predict_batch`` callables over each runtime: Keras, SavedModel, ONNX Runtime, TFLite.

All take float32 ``[N, S, S, 3]`` images (0..255) and return float32 logits as NumPy, so the
tiler, the cascade, the export check and the benchmark treat every runtime alike.

Example:
    >>> predict = onnx_predictor("export/model.onnx", threads=2)  # doctest: +SKIP
    >>> logits = predict(np.zeros((4, 256, 256, 3), np.float32))  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from fisuras.errors import FisurasError
from fisuras.infer.tiling import PredictBatch

EXPORT_EXTRA_HINT = "pip install fisuras[export]"


class ExportDependencyError(FisurasError, ImportError):
    """tf2onnx or onnxruntime is missing; the message says how to install them."""


def import_onnxruntime():
    """Import onnxruntime or raise :class:`ExportDependencyError` with the install command."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ExportDependencyError(
            f"ONNX needs the onnxruntime package, which is not installed: {EXPORT_EXTRA_HINT}"
        ) from error
    return onnxruntime


def keras_predictor(model) -> PredictBatch:
    """Run a Keras model batch by batch through one compiled graph.

    The ``tf.function`` has a batch dimension of None, so it is traced once whatever the batch
    size (``predict_on_batch`` retraces for every new size, e.g. each photo's last partial
    batch), and skips ``predict``'s per-call dataset set-up.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)

    @tf.function(input_signature=[spec])
    def serve(images):
        return tf.cast(model(images, training=False), tf.float32)

    def predict_batch(images: np.ndarray) -> np.ndarray:
        return serve(tf.constant(images, tf.float32)).numpy()

    return predict_batch


def saved_model_predictor(path: str | Path) -> PredictBatch:
    """Run a SavedModel written by ``keras.Model.export`` through its ``serve`` endpoint."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))

    def predict_batch(images: np.ndarray) -> np.ndarray:
        return np.asarray(loaded.serve(tf.constant(images, tf.float32)), dtype=np.float32)

    return predict_batch


def onnx_predictor(path: str | Path, *, threads: int | None = None) -> PredictBatch:
    """Run an ONNX model on the CPU with ONNX Runtime (``threads`` intra-op threads if given)."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def predict_batch(images: np.ndarray) -> np.ndarray:
        feed = {input_name: np.ascontiguousarray(images, dtype=np.float32)}
        return np.asarray(session.run(None, feed)[0], dtype=np.float32)

    return predict_batch


def tflite_predictor(path: str | Path, *, threads: int | None = None) -> PredictBatch:
    """Run a ``.tflite`` model with the TensorFlow Lite interpreter (batch size may vary)."""
    import tensorflow as tf

    with warnings.catch_warnings():
        # tf.lite.Interpreter warns that it moves to the ai-edge-litert package; still works here.
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    allocated_shape: list[tuple[int, ...]] = []

    def predict_batch(images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if allocated_shape[-1:] != [images.shape]:
            interpreter.resize_tensor_input(input_index, list(images.shape))
            interpreter.allocate_tensors()
            allocated_shape[:] = [images.shape]
        interpreter.set_tensor(input_index, images)
        interpreter.invoke()
        return np.array(interpreter.get_tensor(output_index), dtype=np.float32)

    return predict_batch
