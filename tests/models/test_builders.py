"""Shapes, dtypes and built-in preprocessing of the classifier and segmenter builders."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fisuras.models import BACKBONES, backbone_of, build_classifier, build_segmenter
from fisuras.models.backbones import preprocessing_layer
from tests.models.conftest import SIZE

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, size=(2, SIZE, SIZE, 3), dtype=np.uint8)  # what the pipeline emits


REFERENCE_PREPROCESSING = {  # what each backbone was trained on, applied to 0..255 RGB
    "small_cnn": lambda x: x / 255.0,
    "mobilenet_v2": keras.applications.mobilenet_v2.preprocess_input,
    "resnet50": keras.applications.resnet50.preprocess_input,
    "efficientnet_v2_b0": lambda x: (x / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225],
}


def _first_normalised_tensor(model, backbone):
    """The model's input after its built-in normalisation (EfficientNet: inside the backbone)."""
    if backbone == "efficientnet_v2_b0":
        encoder = backbone_of(model)
        norm = next(layer for layer in encoder.layers
                    if isinstance(layer, keras.layers.Normalization))
        return keras.Model(encoder.input, norm.output)(IMAGES.astype("float32"))
    return keras.Model(model.input, model.get_layer("preprocess").output)(IMAGES)


@pytest.mark.parametrize("backbone", ["small_cnn", *BACKBONES])
def test_classifier_gives_float32_logits_under_mixed_precision(backbone, mixed_precision):
    model = build_classifier(backbone, image_size=SIZE, weights="none")

    logits = model(IMAGES)

    assert logits.shape == (2, 1)
    assert logits.dtype == "float32"
    assert np.isfinite(np.asarray(logits)).all()
    assert (backbone_of(model) is None) == (backbone == "small_cnn")
    # The normalisation is inside the model (float16 here, hence the tolerance).
    normalised = np.asarray(_first_normalised_tensor(model, backbone), dtype="float32")
    expected = REFERENCE_PREPROCESSING[backbone](IMAGES.astype("float32"))
    # float16 keeps ~3 significant digits; ResNet's mean pixel values even round to 1/16.
    atol = 0.05 if backbone == "resnet50" else 4e-3
    np.testing.assert_allclose(normalised, expected, rtol=4e-3, atol=atol)


@pytest.mark.parametrize("backbone", ["unet_light", *BACKBONES])
def test_segmenter_gives_full_size_float32_logits_under_mixed_precision(
    backbone, mixed_precision
):
    model = build_segmenter(backbone, image_size=SIZE, weights="none")

    logits = model(IMAGES)

    assert logits.shape == (2, SIZE, SIZE, 1)
    assert logits.dtype == "float32"
    assert np.isfinite(np.asarray(logits)).all()
    encoder = backbone_of(model)
    if backbone == "unet_light":
        assert encoder is None
    else:  # skips at 1/2, 1/4, 1/8, 1/16 and the bottom at 1/32
        sides = [output.shape[1] for output in encoder.outputs]
        assert sides == [SIZE // 2, SIZE // 4, SIZE // 8, SIZE // 16, SIZE // 32]


@pytest.mark.parametrize(
    ("backbone", "reference"),
    [
        ("mobilenet_v2", keras.applications.mobilenet_v2.preprocess_input),
        ("resnet50", keras.applications.resnet50.preprocess_input),
    ],
)
def test_preprocessing_layer_matches_keras_applications(backbone, reference):
    images = RNG.uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")

    ours = np.asarray(preprocessing_layer(backbone)(images))

    np.testing.assert_allclose(ours, reference(images.copy()), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone": "vgg16"}, "unknown backbone"),
        ({"image_size": 80}, "multiple of 32"),
        ({"backbone": "unet_light", "weights": "imagenet"}, "--weights none"),
        ({"crack_prior": 1.0}, "crack_prior must be between 0 and 1"),
    ],
)
def test_segmenter_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_segmenter(**{"image_size": SIZE, "weights": "none", **kwargs})


@pytest.mark.parametrize("backbone", ["unet_light", "mobilenet_v2"])
def test_untrained_segmenter_starts_at_the_crack_prior(backbone):
    # The output bias holds the prior; the layers before it start near zero on average, so the
    # mean probability over a photo is close to the prior instead of 0.5.
    model = build_segmenter(backbone, image_size=SIZE, weights="none", crack_prior=0.05)

    probability = keras.ops.sigmoid(model(IMAGES))

    assert 0.01 < float(np.mean(probability)) < 0.2


def test_small_cnn_has_no_imagenet_weights():
    with pytest.raises(ValueError, match="--weights none"):
        build_classifier("small_cnn", image_size=SIZE, weights="imagenet")
