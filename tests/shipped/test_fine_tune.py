"""``--weights crack-seg-s`` / ``crack-det-s``: a run starts from a shipped model, offline."""

from __future__ import annotations

import numpy as np
import pytest

from fisuras.config import Settings, SettingsError
from fisuras.models.weights import resolve_weights
from fisuras.shipped import RECIPES, ShippedModelError, installed_models, shipped_network
from fisuras.tasks import adopt_shipped_weights, get_task


def test_a_shipped_name_takes_the_shipped_network_and_keeps_the_image_size():
    settings, notes = adopt_shipped_weights(Settings(weights="crack-seg-s"), "segment")
    assert settings.segment.backbone == shipped_network("crack-seg-s")[1] == "unet_light"
    assert settings.segment.image_size == Settings().segment.image_size
    assert notes == ["segment.backbone: mobilenet_v2 -> unet_light (the network of crack-seg-s)"]
    same, notes = adopt_shipped_weights(settings, "segment")
    assert same is settings and notes == []


def test_other_weights_pass_through_untouched():
    for weights in ("none", "imagenet", "/some/file.weights.h5"):
        settings = Settings(weights=weights)
        assert adopt_shipped_weights(settings, "detect") == (settings, [])


def test_a_shipped_model_of_the_other_task_is_refused_naming_the_right_one():
    with pytest.raises(SettingsError, match="segmentation model cannot start a detection run; "
                                            "use crack-det-s"):
        adopt_shipped_weights(Settings(weights="crack-seg-s"), "detect")


def test_every_recipe_names_a_task_and_a_known_backbone():
    from fisuras.models.names import DETECT_BACKBONES, SEGMENT_BACKBONES

    for name in RECIPES:
        task, backbone = shipped_network(name)
        assert backbone in (DETECT_BACKBONES if task == "detect" else SEGMENT_BACKBONES)


def test_a_shipped_model_not_installed_says_how_to_train_it(monkeypatch, tmp_path):
    import fisuras.shipped

    monkeypatch.setattr(fisuras.shipped, "HERE", tmp_path)
    with pytest.raises(ShippedModelError, match="fisuras models train crack-seg-s --zoo"):
        resolve_weights("crack-seg-s")


@pytest.mark.parametrize("name", installed_models())
def test_the_built_model_starts_from_the_shipped_weights_at_another_image_size(name):
    """The model a run builds holds the shipped weights exactly, at a size it never saw."""
    from fisuras.models.saving import load_keras_model

    task = shipped_network(name)[0]
    settings, _ = adopt_shipped_weights(
        Settings(weights=name).updated({get_task(task).key("image_size"): 96}), task)
    model = get_task(task).spec(settings).build_model()
    shipped = load_keras_model(resolve_weights(name), compile=False)
    assert model.input_shape[1:3] == (96, 96) != shipped.input_shape[1:3]
    started, original = model.get_weights(), shipped.get_weights()
    assert len(started) == len(original)
    for got, expected in zip(started, original, strict=True):
        np.testing.assert_array_equal(got, expected)
