"""Reading image and mask files without TensorFlow (Pillow), with the same rules as the pipeline.

The one mask rule (used here and in ``pipeline.py``):
    take the brightest channel of each pixel (so white, red or any colour marks count);
    if the whole mask's maximum is <= 1 it is a 0/1 mask and crack = value >= 1,
    otherwise crack = value > 127.
That reads 0/255 masks, 0/1 masks, colour-on-black masks and JPEG-compressed masks (noise stays
far below 127) alike. Masks drawn dark-on-white are not supported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fisuras.errors import FisurasError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# Files that operating systems drop into folders; never data, never a problem.
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "__macosx"})
# Modes TensorFlow decodes straight to 8-bit RGB with no note worth making.
PLAIN_MODES = frozenset({"RGB"})


def is_ignored(path: Path) -> bool:
    """Hidden files (``.DS_Store``...) and OS litter are skipped silently."""
    return path.name.startswith(".") or path.name.lower() in IGNORED_NAMES


def has_image_suffix(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def binarize_mask(values: np.ndarray) -> np.ndarray:
    """Apply the module's mask rule to an HxW or HxWxC integer array; returns bool HxW.

    Example:
        >>> binarize_mask(np.array([[0, 1]])).tolist(), binarize_mask(np.array([[3, 200]])).tolist()
        ([[False, True]], [[False, True]])
    """
    brightest = values.max(axis=-1) if values.ndim == 3 else values
    if brightest.size == 0 or brightest.max() <= 1:
        return brightest >= 1
    return brightest > 127


class MaskError(FisurasError, ValueError):
    """A mask array is not a 2-D boolean (or 0/1) crack mask."""


def as_mask(values, what: str = "mask") -> np.ndarray:
    """Return a 2-D bool mask; accept bools or 0/1 numbers, shape (H, W) or (H, W, 1).

    The one check of a mask *array* (metrics, overlays, crack geometry); files go through
    :func:`binarize_mask`. A 0/255 image is refused rather than guessed: threshold it first
    (``mask > 127``). Raises :class:`MaskError` naming ``what``.

    Example:
        >>> as_mask(np.array([[0, 1]], np.uint8)).tolist()
        [[False, True]]
    """
    array = np.asarray(values)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise MaskError(f"{what} must be 2-D (H, W) or (H, W, 1); got shape {array.shape}.")
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise MaskError(
                f"{what} must be boolean or 0/1; found values up to {array.max()} "
                "(a 0/255 PNG mask? use mask > 127)."
            )
        array = array.astype(bool)
    return array


def to_uint8_array(image: Image.Image) -> np.ndarray:
    """Pixels as uint8 HxWxC the way TensorFlow decodes them (16-bit keeps the high byte).

    Alpha is dropped, palette and CMYK become RGB, grayscale stays one channel.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # As TensorFlow: keep the high byte, so a 16-bit 0/65535 mask reads as 0/255.
        wide = np.asarray(image).astype(np.uint32)
        return (wide >> 8).clip(0, 255).astype(np.uint8)
    if image.mode in ("L", "RGB"):
        return np.asarray(image)
    if image.mode == "LA":
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


def unusual_mode(image: Image.Image) -> str | None:
    """A short note when the file is not plain 8-bit RGB (grayscale, RGBA, CMYK, 16-bit...)."""
    if image.mode in PLAIN_MODES:
        return None
    names = {"L": "grayscale", "LA": "grayscale+alpha", "RGBA": "RGBA", "CMYK": "CMYK",
             "P": "palette", "I;16": "16-bit", "I;16B": "16-bit", "I;16L": "16-bit",
             "I": "32-bit integer", "1": "1-bit", "YCbCr": "YCbCr", "F": "32-bit float"}
    return names.get(image.mode, image.mode)


def read_mask(path: str | Path) -> np.ndarray:
    """Decode a mask file and binarise it by the module rule (bool HxW)."""
    with Image.open(path) as image:
        return binarize_mask(to_uint8_array(image))


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to uint8 HxWx3 (any mode converted)."""
    with Image.open(path) as image:
        pixels = to_uint8_array(image)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    return pixels


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) from the file header only (fast)."""
    with Image.open(path) as image:
        width, height = image.size
    return height, width


def is_jpeg_of_size(path: str | Path, height: int, width: int) -> bool:
    """Whether the file is a JPEG of exactly ``height`` x ``width`` (header only; False if the
    file cannot be opened: the general decoder will then report it)."""
    try:
        with Image.open(path) as image:
            return image.format == "JPEG" and image.size == (width, height)
    except (OSError, ValueError, SyntaxError):
        return False
