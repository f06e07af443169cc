"""Inference: predict on real photos (tiling, heat maps, cascade), crack geometry, export.

Importing this package does not import TensorFlow; the model runners load it on first use.

Example:
    >>> from fisuras.infer import load_model, predict_paths
    >>> segmenter = load_model("runs/segment-001", expect_task="segment")  # doctest: +SKIP
    >>> report = predict_paths(["photos/"], detector=None, segmenter=segmenter,
    ...                        out_dir="out", mm_per_px=0.05)  # doctest: +SKIP
"""

from fisuras.infer.cascade import CascadeResult, predict_cascade, score_tiles
from fisuras.infer.export import (
    FORMATS,
    ExportDependencyError,
    ExportMismatchError,
    ExportResult,
    export_model,
)
from fisuras.infer.images import UnreadableImageError, read_photo
from fisuras.infer.loading import LoadedModel, NotAFisurasModelError, WrongTaskError, load_model
from fisuras.infer.outputs import OutputPathError
from fisuras.infer.predict import PredictReport, predict_paths
from fisuras.infer.tiling import blend_weights, patch_heatmap, predict_tiled, tile_grid

__all__ = [
    "FORMATS",
    "CascadeResult",
    "ExportDependencyError",
    "ExportMismatchError",
    "ExportResult",
    "LoadedModel",
    "NotAFisurasModelError",
    "OutputPathError",
    "PredictReport",
    "UnreadableImageError",
    "WrongTaskError",
    "blend_weights",
    "export_model",
    "load_model",
    "patch_heatmap",
    "predict_cascade",
    "predict_paths",
    "predict_tiled",
    "read_photo",
    "score_tiles",
    "tile_grid",
]
