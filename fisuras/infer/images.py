"""Input photos for inference: expand files/folders/globs, read them, draw overlays.

Reading never raises anything but :class:`UnreadableImageError` for a bad file, so the caller can
report it and go on with the next photo. Phone photos are turned upright by their EXIF
orientation tag, so masks line up with the photo as the user sees it.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fisuras.data.images import to_uint8_array
from fisuras.errors import FisurasError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
CRACK_RGB = (255, 0, 0)
BOX_RGB = (255, 220, 0)
# Overlays are blended this many rows at a time: temporaries of W x 256 x 3 float32 (25 MB for
# an 8000 px wide photo) instead of several full-size copies.
OVERLAY_BAND_ROWS = 256


class UnreadableImageError(FisurasError, ValueError):
    """An input photo is missing, not an image, truncated or otherwise undecodable."""


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Turn files, folders (searched recursively) and glob patterns into a sorted photo list.

    Returns ``(photos, problems)``: ``problems`` pairs an input with why it gave nothing (missing
    file, empty folder, glob matching nothing). Explicit files are kept whatever their suffix, so
    a bad one is reported by the reader; folders and globs keep only photo suffixes. Duplicates are
    dropped, first occurrence wins.

    Example:
        >>> expand_inputs(["/nonexistent/a.jpg"])[1]
        [('/nonexistent/a.jpg', 'no such file or folder')]
    """
    photos: list[Path] = []
    problems: list[tuple[str, str]] = []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith(".")
            )
            if not found:
                problems.append((text, "folder holds no images"))
        elif path.exists():
            found = [path]
        elif glob.has_magic(text):
            found = sorted(
                Path(p) for p in glob.glob(text, recursive=True)
                if Path(p).is_file() and Path(p).suffix.lower() in PHOTO_SUFFIXES
            )
            if not found:
                problems.append((text, "no image matches this pattern"))
        else:
            found = []
            problems.append((text, "no such file or folder"))
        photos.extend(found)
    seen: set[Path] = set()
    unique = []
    for photo in photos:
        key = photo.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(photo)
    return unique, problems


def read_photo(path: str | Path) -> np.ndarray:
    """Decode a photo to uint8 ``[H, W, 3]``, upright by EXIF; bad files raise UnreadableImageError.

    Pixel values follow the training pipeline's rule (:func:`fisuras.data.images.to_uint8_array`:
    16-bit keeps the high byte, alpha dropped, grey replicated to three channels).
    """
    try:
        with Image.open(path) as image:
            image.load()  # decode now: a truncated file fails here, inside the try
            # in place: no second full-size copy when the photo is already upright
            ImageOps.exif_transpose(image, in_place=True)
            pixels = to_uint8_array(image)
    except FileNotFoundError as error:
        raise UnreadableImageError(f"{path}: no such file") from error
    except Image.DecompressionBombError as error:
        raise UnreadableImageError(f"{path}: image too large to decode safely ({error})") from error
    except (OSError, ValueError, SyntaxError) as error:  # PIL's ways of saying "not an image"
        raise UnreadableImageError(f"{path}: cannot read image ({error})") from error
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return np.ascontiguousarray(pixels[..., :3])


def overlay_bands(height: int) -> list[slice]:
    """Row bands an overlay is blended in, so its float32 temporaries stay a few MB per band."""
    return [slice(top, min(top + OVERLAY_BAND_ROWS, height))
            for top in range(0, height, OVERLAY_BAND_ROWS)]


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Round and clip blended float pixels back to uint8."""
    return np.clip(np.rint(values, out=values), 0, 255, out=values).astype(np.uint8)


def mask_overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The photo with crack pixels tinted red (uint8 ``[H, W, 3]``).

    Blended in float32, a band of rows at a time: the only full-size array is the result.

    Example:
        >>> mask_overlay(np.zeros((1, 2, 3), np.uint8), np.array([[True, False]]), 1.0)[0].tolist()
        [[255, 0, 0], [0, 0, 0]]
    """
    colour = np.asarray(CRACK_RGB, np.float32)
    out = np.empty(image.shape[:2] + (3,), np.uint8)
    for rows in overlay_bands(image.shape[0]):
        band, where = image[rows].astype(np.float32), mask[rows]
        band[where] = (1.0 - alpha) * band[where] + alpha * colour
        out[rows] = to_uint8(band)
    return out


def heat_per_pixel(
    heat: np.ndarray, boxes: np.ndarray, height: int, width: int, rows: slice | None = None
) -> np.ndarray:
    """Spread a patch heat map onto pixels: each pixel takes the highest score covering it.

    ``rows`` limits the result to a band of rows (float32 ``[band, W]``), for band-wise blending.
    """
    rows = slice(0, height) if rows is None else rows
    pixels = np.zeros((rows.stop - rows.start, width), np.float32)
    for score, (y0, x0, y1, x1) in zip(heat.ravel(), boxes.reshape(-1, 4), strict=True):
        top, bottom = max(y0, rows.start), min(y1, rows.stop)
        if top < bottom:
            region = pixels[top - rows.start : bottom - rows.start, x0:x1]
            np.maximum(region, score, out=region)
    return pixels


def heatmap_overlay(
    image: np.ndarray, heat: np.ndarray, boxes: np.ndarray, threshold: float, alpha: float = 0.5
) -> np.ndarray:
    """The photo tinted red by crack probability, with cracked patches outlined in yellow.

    Blended in float32, a band of rows at a time (an 8000 x 8000 photo once took 5 GB here in
    float64); the outlines are drawn straight into the result, as Pillow draws them (inwards).
    """
    height, width = image.shape[:2]
    colour = np.asarray(CRACK_RGB, np.float32)
    out = np.empty((height, width, 3), np.uint8)
    for rows in overlay_bands(height):
        strength = alpha * heat_per_pixel(heat, boxes, height, width, rows)[..., None]
        band = image[rows].astype(np.float32)
        band *= 1.0 - strength
        band += strength * colour
        out[rows] = to_uint8(band)
    line = max(1, min(height, width) // 200)
    for score, (y0, x0, y1, x1) in zip(heat.ravel(), boxes.reshape(-1, 4), strict=True):
        if score >= threshold:
            outline(out, (int(y0), int(x0), int(y1), int(x1)), line, BOX_RGB)
    return out


def outline(pixels: np.ndarray, box: tuple[int, int, int, int], line: int, rgb) -> None:
    """Draw a ``line``-px frame inside ``box`` (y0, x0, y1, x1; ends exclusive), in place."""
    y0, x0, y1, x1 = box
    pixels[y0 : min(y0 + line, y1), x0:x1] = rgb
    pixels[max(y1 - line, y0) : y1, x0:x1] = rgb
    pixels[y0:y1, x0 : min(x0 + line, x1)] = rgb
    pixels[y0:y1, max(x1 - line, x0) : x1] = rgb
