"""The model registries' names, importable without TensorFlow: settings validate against these.

Each name maps to a builder in its module (``backbones.SPECS``, ``classifier``, ``segmenter``,
``losses``); ``tests/models/test_names.py`` checks that the two agree.
"""

from __future__ import annotations

PRETRAINED_BACKBONES = ("mobilenet_v2", "efficientnet_v2_b0", "resnet50")  # keras.applications
SMALL_CNN = "small_cnn"  # detection without a pretrained backbone, for CPU runs
UNET_LIGHT = "unet_light"  # segmentation without a pretrained encoder
DETECT_BACKBONES = (*PRETRAINED_BACKBONES, SMALL_CNN)
SEGMENT_BACKBONES = (*PRETRAINED_BACKBONES, UNET_LIGHT)
LIGHT_BACKBONES = (SMALL_CNN, UNET_LIGHT)  # nothing pretrained to freeze
LOSSES = ("bce", "bce_dice", "dice", "focal", "tversky")
