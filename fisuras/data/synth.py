"""Synthetic crack images with exact masks, for demos, tests and benchmarks.

``render_crack_sample`` draws one image (pure: everything comes from the ``rng`` passed in);
``synthesize`` writes an SDNET2018-style classification tree and segmentation pairs.

What is drawn, and why:
* backgrounds: concrete (decks, walls: grey, multi-scale mottling, aggregate speckle, pores) or
  asphalt (pavements: darker, coarse stones) -- so surfaces differ as in SDNET2018;
* cracks: random walks with momentum (tortuous, not straight), 0-3 branches, width 1-15 px that
  wanders along the crack and tapers to 1 px at the ends, darker than the background;
  some are thin and faint (hard positives);
* hard negatives: stains, straight joints / saw cuts, shadows, spalls and pores, more often in
  uncracked images but also in cracked ones, so "dark structure" alone does not mean "crack".
The mask is exactly the set of pixels drawn dark as crack. Images are saved as JPEG (quality
90), masks as PNG 0/255. The same seed gives byte-identical files.

Example:
    >>> rng = np.random.default_rng(0)
    >>> image, mask = render_crack_sample(rng, 64, cracked=True, surface="deck")
    >>> image.shape, image.dtype, mask.dtype, bool(mask.any())
    ((64, 64, 3), dtype('uint8'), dtype('bool'), True)
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from fisuras.data.dataset import SURFACES
from fisuras.files import write_json

SDNET_FOLDERS = {"deck": ("D", "CD", "UD"), "pavement": ("P", "CP", "UP"),
                 "wall": ("W", "CW", "UW")}
SUMMARY_NAME = "synth.json"
JPEG_QUALITY = 90


@dataclass
class SynthSummary:
    """What ``synthesize`` wrote."""

    out_dir: str
    sdnet_dir: str
    seg_dir: str
    counts: dict[str, int] = field(default_factory=dict)  # "D/CD" -> n, "seg" -> n
    image_size: int = 256
    seed: int = 0
    seconds: float = 0.0

    @property
    def n_files(self) -> int:
        return sum(self.counts.values())

    def to_text(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return (f"wrote {self.n_files:,} synthetic {self.image_size}px images to {self.out_dir} "
                f"in {self.seconds:.1f} s ({parts})")


# --- textures -------------------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, size: int, cell: float) -> np.ndarray:
    """Roughly unit-variance noise, smooth at scale ``cell`` px (coarse grid, bicubic upsample)."""
    cells = max(2, int(math.ceil(size / cell)) + 1)
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32)


def _speckle(rng: np.random.Generator, size: int, density: float, sigma: float) -> np.ndarray:
    """Blobs of ~2*sigma px at random places (aggregate, stones, pores), values about -1..1."""
    impulses = np.zeros((size, size), np.float32)
    n = rng.poisson(density * size * size)
    ys, xs = rng.integers(0, size, n), rng.integers(0, size, n)
    impulses[ys, xs] = rng.uniform(-1.0, 1.0, n).astype(np.float32)
    blobs = ndimage.gaussian_filter(impulses, sigma, truncate=2.5)
    return blobs / max(float(np.abs(blobs).max()), 1e-6)


def _grain(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean pixel noise of standard deviation ``sigma`` (uniform: cheaper to draw than normal;
    figure: BENCHMARKS.md, 'Evaluation and synthetic data')."""
    return (rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(sigma * 12**0.5)


def _background(rng: np.random.Generator, size: int, surface: str) -> np.ndarray:
    """Luminance (float32, 0..255 scale) of a concrete or asphalt surface."""
    if surface == "pavement":  # asphalt: dark, coarse light and dark stones, grainy
        lum = (rng.uniform(70, 125) + 5 * _smooth_noise(rng, size, 64)
               + 40 * _speckle(rng, size, 0.012, 1.3) + 25 * _speckle(rng, size, 0.03, 0.7)
               + _grain(rng, (size, size), 9))
    else:  # concrete: lighter, mottled, fine aggregate and sand; walls a bit smoother
        wall = surface == "wall"
        lum = (rng.uniform(140, 200) if wall else rng.uniform(120, 185))
        lum = (lum + 8 * _smooth_noise(rng, size, 80) + 4 * _smooth_noise(rng, size, 16)
               + (12 if wall else 22) * _speckle(rng, size, 0.02, 0.8)
               + _grain(rng, (size, size), 4 if wall else 6))
    return lum.astype(np.float32)


def _tint(rng: np.random.Generator, surface: str) -> np.ndarray:
    """Per-channel colour factors: warm grey concrete, neutral asphalt."""
    warm = np.array([1.0, 1.0, 1.0] if surface == "pavement" else [1.03, 1.0, 0.96])
    return (warm + rng.normal(0, 0.012, 3)).astype(np.float32)


# --- distractors (hard negatives) -----------------------------------------------------------

def _stain(rng: np.random.Generator, size: int) -> np.ndarray:
    """Soft irregular blotch: multiplicative factor map."""
    blob = _smooth_noise(rng, size, rng.uniform(30, 70))
    threshold = rng.uniform(0.6, 1.2)
    weight = np.clip((blob - threshold) / 0.5, 0, 1)
    return 1 - rng.uniform(0.08, 0.25) * weight


def _shadow(rng: np.random.Generator, size: int) -> np.ndarray:
    """A straight soft-edged shadow over part of the image."""
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    offset = rng.uniform(0.2, 0.8) * size
    distance = (xx - size / 2) * np.cos(angle) + (yy - size / 2) * np.sin(angle) + offset - size / 2
    softness = rng.uniform(2, 25)
    inside = 1 / (1 + np.exp(-np.clip(distance / softness, -30, 30)))
    return 1 - rng.uniform(0.15, 0.45) * inside


def _joint(rng: np.random.Generator, size: int, lum: np.ndarray) -> None:
    """A straight joint or saw cut across the image (in place): constant width, dark."""
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    if rng.random() < 0.6:  # mostly along the image axes, as on decks and pavements
        angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.02)
    else:
        angle = rng.uniform(0, np.pi)
    cx, cy = rng.uniform(0.15, 0.85, 2) * size
    dx, dy = np.cos(angle) * size * 1.5, np.sin(angle) * size * 1.5
    draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=255,
              width=int(rng.integers(2, 7)))
    line = np.asarray(layer, np.float32) / 255
    lum *= 1 - rng.uniform(0.25, 0.55) * line


def _spall(rng: np.random.Generator, size: int, lum: np.ndarray) -> None:
    """An irregular chipped patch: darker, rough inside, slightly light rim (in place)."""
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    radius = rng.uniform(8, 30)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
    radii = radius * rng.uniform(0.6, 1.3, 12)
    polygon = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii,
                                                                           strict=True)]
    layer = Image.new("L", (size, size), 0)
    ImageDraw.Draw(layer).polygon(polygon, fill=255)
    patch = ndimage.gaussian_filter(np.asarray(layer, np.float32) / 255, 1.5)
    rough = 12 * _speckle(rng, size, 0.05, 0.8)
    rim = np.clip(ndimage.gaussian_filter(patch, 3) - patch, 0, 1)
    lum *= 1 - rng.uniform(0.12, 0.3) * patch
    lum += patch * rough + 40 * rim


def _pores(rng: np.random.Generator, size: int, lum: np.ndarray) -> None:
    """Small dark bug holes, a classic false positive on concrete (in place)."""
    holes = np.clip(-_speckle(rng, size, rng.uniform(0.0005, 0.002), 1.5), 0, 1)
    lum *= 1 - 0.6 * holes


# --- cracks -----------------------------------------------------------------------------------

def _walk(rng: np.random.Generator, start: np.ndarray, angle: float, length: float,
          step: float = 2.0) -> np.ndarray:
    """Points of a tortuous path: the heading drifts slowly and zig-zags step by step.

    The zig-zag is not accumulated, so the crack keeps its overall direction instead of curling.
    """
    n = max(3, int(length / step))
    drift = np.cumsum(rng.normal(0, 0.035, n))
    heading = angle + drift + rng.normal(0, 0.45, n)
    steps = step * np.stack([np.cos(heading), np.sin(heading)], axis=1)
    return start + np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])


def _width_profile(rng: np.random.Generator, n: int, width: float, taper_start: bool
                   ) -> np.ndarray:
    """Width along a path: wanders around ``width`` and tapers to ~1 px at the end(s)."""
    t = np.linspace(0, 1, n)
    wander = 1 + 0.35 * np.interp(t, np.linspace(0, 1, 6), rng.uniform(-1, 1, 6))
    ends = np.minimum(1.0, (1 - t) / 0.25)
    if taper_start:
        ends = np.minimum(ends, t / 0.25)
    return np.maximum(1.0, width * wander * np.sqrt(np.clip(ends, 0, 1)))


def _draw_path(draw: ImageDraw.ImageDraw, points: np.ndarray, widths: np.ndarray) -> None:
    for (x0, y0), (x1, y1), w in zip(points[:-1], points[1:], widths[:-1], strict=True):
        width = int(round(w))
        draw.line([(x0, y0), (x1, y1)], fill=255, width=width)
        if width >= 3:  # round joints so wide segments don't leave notches
            r = w / 2
            draw.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], fill=255)


def _crack_mask(rng: np.random.Generator, size: int, max_width: float = 15.0) -> np.ndarray:
    """Bool mask of 1-3 branching cracks."""
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.choice([1, 2, 3], p=[0.7, 0.24, 0.06]))):
        width = float(np.exp(rng.uniform(0, np.log(max_width))))  # log-uniform: mostly thin
        length = rng.uniform(0.3, 1.3) * size
        start = rng.uniform(0.0, 1.0, 2) * size
        towards_centre = math.atan2(size / 2 - start[1], size / 2 - start[0])
        points = _walk(rng, start, towards_centre + rng.normal(0, 0.6), length)
        widths = _width_profile(rng, len(points), width, taper_start=True)
        _draw_path(draw, points, widths)
        for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.45, 0.3, 0.17, 0.08]))):
            at = int(rng.integers(len(points) // 5, max(len(points) // 5 + 1,
                                                         4 * len(points) // 5)))
            heading = math.atan2(*(points[min(at + 1, len(points) - 1)] - points[at])[::-1])
            branch = _walk(rng, points[at], heading + rng.choice([-1, 1]) * rng.uniform(0.4, 1.2),
                           length * rng.uniform(0.15, 0.5))
            branch_widths = _width_profile(rng, len(branch), widths[at] * rng.uniform(0.4, 0.8),
                                           taper_start=False)
            _draw_path(draw, branch, branch_widths)
    return np.asarray(layer) > 0


def render_crack_sample(rng: np.random.Generator, size: int, cracked: bool,
                        surface: str) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic surface image and its exact crack mask.

    Args:
        rng: the only source of randomness (same state -> same image).
        size: image side in pixels.
        cracked: draw cracks (the mask is all False otherwise).
        surface: "deck" | "pavement" | "wall".

    Returns:
        (image uint8 HxWx3, mask bool HxW); every mask pixel is darker than the surface would
        be there without the crack.
    """
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {SURFACES}, got {surface!r}")
    lum = _background(rng, size, surface)
    distractor_chance = 0.35 if cracked else 0.7
    if rng.random() < distractor_chance:
        for kind in rng.choice(["stain", "joint", "shadow", "spall", "pores"],
                               size=int(rng.integers(1, 3)), replace=False):
            if kind == "stain":
                lum *= _stain(rng, size)
            elif kind == "shadow":
                lum *= _shadow(rng, size)
            elif kind == "joint":
                _joint(rng, size, lum)
            elif kind == "spall":
                _spall(rng, size, lum)
            else:
                _pores(rng, size, lum)
    mask = _crack_mask(rng, size) if cracked else np.zeros((size, size), bool)
    if mask.any():
        # Darkness per crack: mostly clearly dark, sometimes faint (hard positives); the
        # interior varies smoothly so the crack is not a flat stamp.
        depth = rng.uniform(0.3, 0.85)
        variation = 1 + 0.1 * _smooth_noise(rng, size, 10)
        factor = np.clip(depth * variation, 0.15, 0.93)
        lum = np.where(mask, lum * factor, lum)
    light = 1 + np.float32(rng.uniform(-0.08, 0.08)) * np.linspace(-1, 1, size, dtype=np.float32)
    lum *= light[None, :]  # uneven lighting
    rgb = lum[..., None] * _tint(rng, surface)[None, None, :]
    rgb += _grain(rng, rgb.shape, 2.0)  # sensor noise, per channel
    return np.clip(rgb, 0, 255).astype(np.uint8), mask


# --- writing files ------------------------------------------------------------------------

def _write_one(job: tuple) -> None:
    """Render and save one file; runs in worker processes, so it takes only plain data."""
    image_path, mask_path, seed_key, size, cracked, surface = job
    rng = np.random.default_rng(seed_key)
    image, mask = render_crack_sample(rng, size, cracked, surface)
    Image.fromarray(image).save(image_path, quality=JPEG_QUALITY)
    if mask_path is not None:
        Image.fromarray((mask * 255).astype(np.uint8)).save(mask_path)


def synthesize(out_dir: str | Path, *, n_per_class_per_surface: int = 100,
               n_seg: int = 60, image_size: int = 256, seed: int = 0,
               n_uncracked_per_surface: int | None = None, seg_uncracked_fraction: float = 0.1,
               workers: int = 1) -> SynthSummary:
    """Write ``out_dir/sdnet/{D,P,W}/{C*,U*}/*.jpg`` and ``out_dir/seg/{images,masks}``.

    Args:
        out_dir: output folder (created; existing files of the same names are overwritten).
        n_per_class_per_surface: images per class folder (e.g. D/CD).
        n_seg: segmentation pairs (surfaces drawn at random).
        image_size: side of every image.
        seed: the same seed writes byte-identical files; each file has its own random stream,
            so asking for more files leaves the first ones unchanged.
        n_uncracked_per_surface: uncracked images per surface if different from cracked
            (e.g. 5.7x for SDNET2018's 15% cracked balance).
        seg_uncracked_fraction: share of segmentation images with no crack (empty masks).
        workers: processes to render with.

    Example:
        >>> synthesize("demo_data", n_per_class_per_surface=50, n_seg=20)  # doctest: +SKIP
    """
    started = time.perf_counter()
    out = Path(out_dir).absolute()
    n_uncracked = n_per_class_per_surface if n_uncracked_per_surface is None else \
        n_uncracked_per_surface
    jobs: list[tuple] = []
    counts: dict[str, int] = {}
    for s_index, surface in enumerate(SURFACES):
        top, cracked_name, uncracked_name = SDNET_FOLDERS[surface]
        for cracked, name, n in ((True, cracked_name, n_per_class_per_surface),
                                 (False, uncracked_name, n_uncracked)):
            folder = out / "sdnet" / top / name
            folder.mkdir(parents=True, exist_ok=True)
            counts[f"{top}/{name}"] = n
            jobs += [(str(folder / f"{i:05d}.jpg"), None, [seed, 1, s_index, int(cracked), i],
                      image_size, cracked, surface) for i in range(n)]
    seg_rng = np.random.default_rng([seed, 2])
    seg_surfaces = seg_rng.integers(0, len(SURFACES), n_seg)
    seg_cracked = seg_rng.random(n_seg) >= seg_uncracked_fraction
    for folder in ("images", "masks"):
        (out / "seg" / folder).mkdir(parents=True, exist_ok=True)
    jobs += [(str(out / "seg" / "images" / f"{i:05d}.jpg"),
              str(out / "seg" / "masks" / f"{i:05d}.png"), [seed, 3, i], image_size,
              bool(seg_cracked[i]), SURFACES[seg_surfaces[i]]) for i in range(n_seg)]
    counts["seg"] = n_seg

    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_write_one, jobs, chunksize=64))
    else:
        for job in jobs:
            _write_one(job)
    summary = SynthSummary(str(out), str(out / "sdnet"), str(out / "seg"), counts, image_size,
                           seed, time.perf_counter() - started)
    write_json(out / SUMMARY_NAME, summary, indent=1)
    return summary
