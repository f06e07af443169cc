"""How big the decoded dataset is, and where to cache it (pure decisions, no TensorFlow).

``pipeline.make_dataset`` caches decoded, pre-augmentation images so that later epochs skip
reading and decoding. What it caches per image (and so what is estimated here):

* detection, training with augmentation: the image at side ``crop_source_side(S)`` (random
  S x S crops are cut from it each epoch), else the image resized to S x S; 3 bytes per pixel;
* segmentation, training: the image and its mask at their own size (upscaled when smaller
  than S), 3 + 1 bytes per pixel; otherwise both resized to S x S.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fisuras.data.dataset import Sample
from fisuras.data.tiles import segment_grid

CACHE_MODES = ("auto", "memory", "disk", "none")
PER_ELEMENT_OVERHEAD = 1024  # bytes of bookkeeping per cached element (label, shapes)


def crop_source_side(image_size: int) -> int:
    """Side of the image random crops are cut from in detection training: S * 8/7.

    For S=224 that is 256, SDNET2018's own size, so its patches are cropped without resampling.
    """
    return int(round(image_size * 8 / 7))


def tile_count(height: int, width: int, image_size: int) -> int:
    """Tiles of side S the validation grid (:func:`fisuras.data.tiles.segment_grid`, prediction's
    grid) cuts from one segmentation image (see ``training_size``).

    Example:
        >>> tile_count(320, 480, 256)  # a CrackForest photo: 2 rows of 3, stride 192
        6
    """
    return len(segment_grid(*training_size(height, width, image_size), image_size))


def crops_per_image(height: int, width: int, image_size: int) -> int:
    """Random S x S training crops one segmentation photo gives per epoch: its area in crops.

    An epoch then covers every photo about once at the crop size, however large it is (a
    480 x 320 CrackForest photo gives 2 crops of 256 px, 38 of 64 px).

    Example:
        >>> crops_per_image(320, 480, 256), crops_per_image(128, 181, 256)
        (2, 1)
    """
    rows, columns = training_size(height, width, image_size)
    return max(1, round(rows * columns / image_size**2))


def epoch_crops(total_crops: int, batch_size: int, min_steps: int) -> int:
    """Crops in one epoch: all of them, or more (going round again) for ``min_steps`` batches.

    A small dataset at a large batch would otherwise give one or two optimizer steps per epoch;
    the extra crops are new random windows of the same photos.

    Example:
        >>> epoch_crops(total_crops=84, batch_size=8, min_steps=25)  # 11 steps of crops: 25
        200
        >>> epoch_crops(total_crops=400, batch_size=8, min_steps=25)
        400
    """
    return max(total_crops, min_steps * batch_size)


def describe_segmentation_epoch(crops_per_photo: str, min_steps: int, image_size: int,
                                scale_jitter: tuple[float, float]) -> str:
    """What one segmentation training epoch is, in words (``fisuras config show``).

    Example:
        >>> describe_segmentation_epoch("one", 0, 256, (1.0, 1.0))
        'a segmentation epoch: one random 256 px crop of every training photo'
    """
    if crops_per_photo == "area":
        text = (f"a segmentation epoch: every training photo about once at {image_size} px, "
                f"its area in random crops (a 480 x 320 photo gives "
                f"{crops_per_image(320, 480, image_size)})")
    else:
        text = f"a segmentation epoch: one random {image_size} px crop of every training photo"
    if min_steps:
        text += f", repeated until the epoch has at least {min_steps} steps"
    if tuple(scale_jitter) != (1.0, 1.0):
        text += (f"; each crop window is {scale_jitter[0]:g}-{scale_jitter[1]:g}x the crop "
                 "side, resized to it")
    return text


def training_size(height: int, width: int, image_size: int) -> tuple[int, int]:
    """Size a segmentation image is brought to (training and validation): both sides >= S."""
    scale = max(1.0, image_size / min(height, width))
    return max(image_size, math.ceil(height * scale - 1e-6)), \
        max(image_size, math.ceil(width * scale - 1e-6))


def estimate_decoded_bytes(samples: Sequence[Sample], image_size: int, task: str, *,
                           training: bool = False, augment: bool | None = None,
                           image_sizes: Sequence[tuple[int, int]] | None = None) -> int:
    """Bytes the decoded (pre-augmentation) samples take in a cache.

    Args:
        samples: the samples to be cached.
        image_size: the model input side S.
        task: "detect" or "segment".
        training, augment: which pipeline is meant (``augment=None`` means ``training``).
        image_sizes: (height, width) per sample; used for segmentation, where images are cached
            at their own size. Without them every image counts as S x S (a lower bound).

    Example:
        >>> estimate_decoded_bytes([Sample("a.jpg", 1)] * 1000, 224, "detect")
        151552000
    """
    augment = training if augment is None else augment
    n = len(samples)
    if task == "detect":
        side = crop_source_side(image_size) if (training and augment) else image_size
        return n * (side * side * 3 + PER_ELEMENT_OVERHEAD)
    if task == "segment" and image_sizes is not None:
        pixels = sum(h * w for h, w in (training_size(h, w, image_size) for h, w in image_sizes))
        return pixels * 4 + n * PER_ELEMENT_OVERHEAD
    return n * (image_size * image_size * 4 + PER_ELEMENT_OVERHEAD)


@dataclass(frozen=True)
class CachePlan:
    """Where decoded images go: "memory", "disk" (``path``) or "none" (stream every epoch)."""

    mode: str
    estimated_bytes: int
    reason: str
    path: str | None = None


def plan_cache(requested: str, estimated_bytes: int, budget_bytes: int,
               cache_dir: str | None, dataset_key: str) -> CachePlan:
    """Decide the cache mode.

    "auto": memory if the estimate fits ``budget_bytes``; else disk in ``cache_dir``; with no
    ``cache_dir``, stream (nothing is written anywhere unasked).

    Example:
        >>> plan_cache("auto", 10 * 2**30, 2**30, None, "k").mode
        'none'
    """
    if requested not in CACHE_MODES:
        raise ValueError(f"cache must be one of {CACHE_MODES}, got {requested!r}")
    size = f"{estimated_bytes / 2**20:,.0f} MiB decoded"
    disk_path = str(Path(cache_dir) / f"fisuras-{dataset_key}.tfcache") if cache_dir else None
    if requested == "none":
        return CachePlan("none", estimated_bytes, "streaming as asked")
    if requested == "memory":
        return CachePlan("memory", estimated_bytes, f"memory as asked ({size})")
    if requested == "disk":
        if disk_path is None:
            raise ValueError("cache='disk' needs cache_dir")
        return CachePlan("disk", estimated_bytes, f"disk as asked ({size})", disk_path)
    budget = f"budget {budget_bytes / 2**20:,.0f} MiB"
    if estimated_bytes <= budget_bytes:
        return CachePlan("memory", estimated_bytes, f"{size} fits the memory {budget}")
    if disk_path is not None:
        return CachePlan("disk", estimated_bytes, f"{size} exceeds the memory {budget}",
                         disk_path)
    return CachePlan("none", estimated_bytes,
                     f"{size} exceeds the memory {budget} and no cache_dir was given")


def dataset_key(samples: Sequence[Sample], *parts: object, stats: Sequence[tuple] = ()) -> str:
    """A short hash naming one cache: the files, their sizes/mtimes and the pipeline settings."""
    digest = hashlib.blake2b(digest_size=10)
    for part in parts:
        digest.update(repr(part).encode())
    for sample, stat in zip(samples, stats or [()] * len(samples), strict=True):
        digest.update(repr((sample.image, sample.mask, sample.label, stat)).encode())
    return digest.hexdigest()
