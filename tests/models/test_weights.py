"""The weights argument: local files (backbone or whole model), bad files, offline ImageNet."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fisuras.models import (
    WeightsFileError,
    WeightsUnavailableError,
    backbone_of,
    build_classifier,
    build_segmenter,
)
from fisuras.models.weights import resolve_weights
from tests.models.conftest import SIZE


def _assert_same_weights(expected: list, actual: list) -> None:
    assert len(expected) == len(actual)
    for want, got in zip(expected, actual, strict=True):
        np.testing.assert_array_equal(np.asarray(want), np.asarray(got))


def _backbone_weights(model) -> list:
    return backbone_of(model).get_weights()


def test_resolve_weights_names():
    assert resolve_weights("ImageNet") == "imagenet"
    assert resolve_weights("none") == "none"
    assert resolve_weights(None) == "none"


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "nope" / "mobilenet_v2_notop.h5"

    with pytest.raises(WeightsFileError, match="mobilenet_v2_notop.h5.*does not exist"):
        build_classifier("mobilenet_v2", image_size=SIZE, weights=missing)


def test_weights_file_of_unknown_kind_is_refused(tmp_path):
    text = tmp_path / "weights.txt"
    text.write_text("not weights")

    with pytest.raises(WeightsFileError, match="weights.txt"):
        resolve_weights(text)


def test_backbone_weights_file_loads_into_classifier_and_segmenter(mobilenet_weights_file):
    path, application = mobilenet_weights_file

    classifier = build_classifier("mobilenet_v2", image_size=SIZE, weights=path)
    segmenter = build_segmenter("mobilenet_v2", image_size=SIZE, weights=str(path))

    _assert_same_weights(application.get_weights(), _backbone_weights(classifier))
    # The segmenter's encoder stops at the same last layer, so it holds the same weights.
    _assert_same_weights(application.get_weights(), _backbone_weights(segmenter))


def test_legacy_h5_backbone_file_loads(tmp_path, mobilenet_weights_file):
    # keras.applications' official *_notop.h5 files are in the legacy HDF5 format.
    _, application = mobilenet_weights_file
    path = tmp_path / "mobilenet_v2_notop.h5"
    application.save(path)

    model = build_classifier("mobilenet_v2", image_size=SIZE, weights=path)

    _assert_same_weights(application.get_weights(), _backbone_weights(model))


def test_whole_fisuras_model_file_loads_into_the_whole_model(tmp_path):
    trained = build_classifier("small_cnn", image_size=SIZE, weights="none")
    trained.get_layer("logit").bias.assign([3.0])  # something a fresh model would not have
    path = tmp_path / "model.keras"
    trained.save(path)

    rebuilt = build_classifier("small_cnn", image_size=SIZE, weights=path)

    _assert_same_weights(trained.get_weights(), rebuilt.get_weights())


def test_weights_file_that_does_not_fit_is_named(tmp_path):
    path = tmp_path / "small_cnn.weights.h5"
    build_classifier("small_cnn", image_size=SIZE, weights="none").save_weights(path)

    with pytest.raises(WeightsFileError, match="small_cnn.weights.h5.*does not fit"):
        build_classifier("mobilenet_v2", image_size=SIZE, weights=path)


def _official_file_is_cached() -> bool:
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    return any(cache.glob("mobilenet_v2_weights_*no_top.h5"))


@pytest.mark.skipif(_official_file_is_cached(), reason="ImageNet file already in Keras cache")
def test_imagenet_offline_says_how_to_go_on():
    with pytest.raises(WeightsUnavailableError) as caught:
        build_classifier("mobilenet_v2", image_size=96, weights="imagenet")

    message = str(caught.value)
    assert "mobilenet_v2" in message and "download failed" in message
    assert "--weights none" in message
    assert "--weights /path/to/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" \
        in message
    assert "~/.keras/models" in message
    assert caught.value.__cause__ is not None  # the original network error is kept


@pytest.mark.parametrize(("build", "plain"), [(build_classifier, "small_cnn"),
                                              (build_segmenter, "unet_light")])
def test_both_builders_refuse_imagenet_for_their_plain_network(build, plain):
    with pytest.raises(WeightsFileError, match=f"{plain} is trained from scratch"):
        build(plain, image_size=64, weights="imagenet")
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        build("vgg", image_size=64, weights="none")
