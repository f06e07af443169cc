"""The settings accept exactly the names the model registries can build."""

from __future__ import annotations

import typing

from fisuras.config import DetectSettings, SegmentSettings
from fisuras.models import backbones, losses, names


def allowed(model, field: str) -> set[str]:
    return set(typing.get_args(model.model_fields[field].annotation))


def test_backbone_and_loss_names_in_settings_come_from_the_registries():
    assert set(backbones.SPECS) == set(names.PRETRAINED_BACKBONES)
    assert allowed(DetectSettings, "backbone") == set(backbones.SPECS) | {names.SMALL_CNN}
    assert allowed(SegmentSettings, "backbone") == set(backbones.SPECS) | {names.UNET_LIGHT}
    assert allowed(SegmentSettings, "loss") == set(losses._CLASSES) == set(names.LOSSES)
