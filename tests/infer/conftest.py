"""Small models and run folders for the inference tests.

Three kinds of model:

* ``fisuras.models`` builders (``unet_light`` / ``small_cnn``, random weights, fixed seed) when the
  package exports them — real architectures for the equality and export tests;
* a fully convolutional stand-in (no pooling, any input size, receptive radius 3 px) that is
  exactly translation equivariant, for the seam tests;
* "darkness" models with hand-set weights whose answer is known: the segmenter calls a pixel
  crack when it is dark, the classifier calls a patch cracked when it holds a dark 8x8 block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fisuras.models.card import ModelCard

keras = pytest.importorskip("keras")

FCN_RADIUS = 3  # three 3x3 convolutions
BRIGHT, DARK = 200.0, 0.0


def _builders():
    try:
        from fisuras.models import build_classifier, build_segmenter
    except ImportError:
        return None
    return build_classifier, build_segmenter


def make_segmenter(size: int, seed: int = 0):
    """``unet_light`` from fisuras.models if available, else a small conv stand-in."""
    keras.utils.set_random_seed(seed)
    builders = _builders()
    if builders is not None:
        return builders[1]("unet_light", image_size=size, weights="none")
    return fcn_segmenter(size, seed)


def make_classifier(size: int, seed: int = 0):
    """``small_cnn`` from fisuras.models if available, else a small conv stand-in."""
    keras.utils.set_random_seed(seed)
    builders = _builders()
    if builders is not None:
        return builders[0]("small_cnn", image_size=size, weights="none")
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(1, dtype="float32")(x))


def fcn_segmenter(size: int | None = None, seed: int = 0):
    """Three 'same' 3x3 convolutions: exactly translation equivariant, any input size."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(1, 3, padding="same", dtype="float32")(x)
    return keras.Model(inputs, outputs)


def dark_segmenter(size: int):
    """Logit = 20 * darkness - 10 per pixel (darkness = 1 - mean/255): dark pixels are crack."""
    inputs = keras.Input((size, size, 3))
    darkness = keras.layers.Rescaling(-1 / 255.0, offset=1.0)(inputs)
    head = keras.layers.Conv2D(1, 1, dtype="float32")
    model = keras.Model(inputs, head(darkness))
    head.set_weights([np.full((1, 1, 3, 1), 20 / 3, np.float32), np.array([-10.0], np.float32)])
    return model


def dark_classifier(size: int):
    """Logit = 20 * (darkest 8x8 block's mean darkness) - 10: a dark block means cracked."""
    inputs = keras.Input((size, size, 3))
    darkness = keras.layers.Rescaling(-1 / 255.0, offset=1.0)(inputs)
    blocks = keras.layers.Conv2D(1, 8, strides=8, use_bias=False)
    pooled = keras.layers.GlobalMaxPooling2D()(blocks(darkness))
    head = keras.layers.Dense(1, dtype="float32")
    model = keras.Model(inputs, head(pooled))
    blocks.set_weights([np.full((8, 8, 3, 1), 1 / 192, np.float32)])
    head.set_weights([np.array([[20.0]], np.float32), np.array([-10.0], np.float32)])
    return model


def save_run(folder: Path, model, task: str, size: int, threshold: float = 0.5) -> Path:
    """Write a run folder the way the training engine does: model.keras + model_card.json."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    ModelCard(task=task, backbone="test", image_size=size, threshold=threshold).save(folder)
    return folder


def bright_photo(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), BRIGHT, np.float32)


def write_photo(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image.save(path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")
    return path


@pytest.fixture(scope="session")
def cfd_photos(shared_data) -> list[Path]:
    photos = sorted((shared_data / "seg_cfd" / "images").glob("*.jpg"))
    if len(photos) < 2:
        pytest.skip("seg_cfd photos missing")
    return photos


@pytest.fixture(scope="session")
def cfd_image(cfd_photos) -> np.ndarray:
    """The first CFD photo as float32 [320, 480, 3]."""
    return np.asarray(Image.open(cfd_photos[0]).convert("RGB"), dtype=np.float32)


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run folders shared by the predict, loading and export tests (models saved once)."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "segmenter": save_run(root / "segmenter", make_segmenter(64), "segment", 64),
        "classifier": save_run(root / "classifier", make_classifier(64), "detect", 64),
        "dark_segmenter": save_run(root / "dark_segmenter", dark_segmenter(64), "segment", 64),
        "dark_classifier": save_run(root / "dark_classifier", dark_classifier(64), "detect", 64),
    }
