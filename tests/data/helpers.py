"""Small file factories for the data tests: generated trees in tmp_path, never real data copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def noise_image(size: tuple[int, int] = (40, 48), seed: int = 0) -> np.ndarray:
    """Random uint8 RGB pixels of (height, width); different seeds give different images."""
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def write_image(path: Path, pixels: np.ndarray | None = None, *, seed: int = 0,
                size: tuple[int, int] = (40, 48), mode: str | None = None, **save) -> Path:
    """Write ``pixels`` (or random noise) to ``path``; the suffix picks the format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(noise_image(size, seed) if pixels is None else pixels)
    if mode is not None:
        image = image.convert(mode)
    image.save(path, **save)
    return path


def write_mask(path: Path, mask: np.ndarray, *, on: int = 255, mode: str = "L") -> Path:
    """Write a boolean mask with ``on`` as the crack value (255, 1, or an RGB colour)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "RGB":
        pixels = np.zeros((*mask.shape, 3), np.uint8)
        pixels[mask] = on
    else:
        pixels = (mask * on).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def stripe_mask(size: tuple[int, int] = (40, 48), column: int = 10, width: int = 3) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[:, column:column + width] = True
    return mask


def make_class_tree(root: Path, folders: dict[str, int], n_per_folder: int = 3,
                    suffix: str = ".jpg") -> Path:
    """``root/<folder>/<i>.jpg`` noise images; each file gets distinct pixels."""
    seed = 0
    for folder in folders:
        for i in range(n_per_folder):
            seed += 1
            write_image(root / folder / f"{i:03d}{suffix}", seed=seed)
    return root


def make_seg_set(root: Path, n: int = 3, size: tuple[int, int] = (40, 48),
                 mask_suffix: str = ".png", seed: int = 100) -> Path:
    """``root/images/<i>.jpg`` + ``root/masks/<i>.png`` with a vertical crack stripe."""
    for i in range(n):
        write_image(root / "images" / f"{i:03d}.jpg", seed=seed + i, size=size)
        write_mask(root / "masks" / f"{i:03d}{mask_suffix}", stripe_mask(size, 5 + i))
    return root
