"""The tf.data input pipeline: files -> decoded, augmented, batched uint8 images + targets.

``make_dataset`` yields ``(images, targets)``:

* images: uint8 ``[B, S, S, 3]`` in 0..255. **No normalisation here**: each model carries its
  backbone's own preprocessing as layers, so the pipeline and the saved model never disagree.
* targets: detection float32 ``[B, 1]`` (1 = cracked); segmentation float32 ``[B, S, S, 1]``
  in {0, 1}, binarised by the one mask rule of ``fisuras.data.images`` (brightest channel;
  masks whose maximum is <= 1 are 0/1 masks, others crack where > 127).

Geometry:
* detection evaluation (``training=False``): the whole image resized to S x S (area averaging
  when shrinking a lot, so thin cracks survive it; see ``_resize``), the way inference sees a
  patch;
* detection training with augmentation: a random S x S crop of the image resized (only if
  needed) to side ``crop_source_side(S)`` = S*8/7 (224 -> 256: SDNET2018 patches are cropped
  with no resampling, and when streaming, JPEG decoding is limited to the crop window). So
  training sees cracks at 8/7 the scale evaluation sees them (a mild, fixed zoom);
* segmentation, always at the image's own resolution (images smaller than S are first
  upscaled), so thin cracks keep their width: in training with augmentation a random S x S
  crop, the same window on image and mask; otherwise (validation) S x S tiles covering the
  whole image on prediction's own grid (``fisuras.data.tiles.segment_grid``: overlapping,
  32-px aligned, mirror-extended past the edges), as tiled inference sees it.
  (Validation on whole images shrunk to S x S would judge the model at another scale than it
  was trained and is used at: a 2 px crack becomes a fraction of a pixel.)

Augmentation (training, ``augment`` on): the crops above (segmentation: optionally with a scale
jitter, ``scale_jitter``), a random one of the 8 flips/90-degree rotations (same on image and
mask), brightness +-20 levels and contrast x0.8-1.2 (image only).

Segmentation epochs: a photo gives one random crop per epoch, or with ``crops_by_area``
``crops_per_image`` of them (its area in crops); the epoch goes round again until it has at
least ``min_steps`` batches (``epoch_crops``).
Flips and colour run on whole batches in two XLA-compiled functions, several times cheaper on a
CPU than the same TensorFlow ops one by one, and a fraction of one JPEG decode; colour uses 16-bit
fixed point for the same reason (figures: BENCHMARKS.md, 'Input pipeline').

Randomness: every element is paired with one random int64 (``Dataset.random``); its crop window
is that seed modulo the number of positions (two integer ops), and each batch draws its flips and
colour from its elements' seeds. Per-element work is kept to a few ops: on a CPU with few cores,
every op in a per-image map costs a visible share of a JPEG decode, e.g. a per-image JPEG-size
check with its ``tf.cond``, or per-image uniforms (figures: BENCHMARKS.md, 'Input pipeline',
'Later the same day: per-image work cut').

Order of steps (why): shuffle file *names* (cheap, a full shuffle, memory does not grow with
image count) -> parallel read + decode -> [cache decoded pre-augmentation images] ->
[shuffle buffer, only after a cache] -> crop -> batch -> flips/colour -> prefetch.

``deterministic=True``: fixed order and seeded augmentation, so two runs give identical batches.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from fisuras.data.cache_plan import (
    CachePlan,
    crop_source_side,
    crops_per_image,
    dataset_key,
    epoch_crops,
    estimate_decoded_bytes,
    plan_cache,
    tile_count,
)
from fisuras.data.dataset import TASKS, Sample
from fisuras.data.images import image_size as header_size
from fisuras.data.images import is_jpeg_of_size
from fisuras.data.tiles import segment_grid

AUTOTUNE = tf.data.AUTOTUNE
BRIGHTNESS_DELTA = 20.0  # +- grey levels
CONTRAST_RANGE = (0.8, 1.2)
# Columns of a batch's uniforms (``_batch_uniforms``).
_TRANSPOSE, _FLIP_ROWS, _FLIP_COLUMNS, _BRIGHTNESS, _CONTRAST = range(5)
# Detection crops start on an 8-pixel column grid: libjpeg decodes whole 8/16-pixel blocks, and
# an unaligned window costs more decode time (figure: BENCHMARKS.md, 'Input pipeline'). Rows are
# free; transposes mix the axes anyway.
DETECT_COLUMN_STEP = 8

__all__ = ["make_dataset", "describe_cache", "estimate_decoded_bytes", "CachePlan"]


def make_dataset(samples: Sequence[Sample], *, task: str, image_size: int, batch_size: int,
                 training: bool, augment: bool | None = None, cache: str = "auto",
                 cache_budget_bytes: int = 2**30, cache_dir: str | None = None,
                 shuffle_buffer: int = 2048, prefetch: int | None = None,
                 deterministic: bool = False, seed: int = 0, drop_remainder: bool = False,
                 num_parallel_calls: int | None = None, jit_augment: bool = True,
                 shard_policy: str | None = None, num_workers: int = 1,
                 crops_by_area: bool = False, min_steps: int = 0,
                 scale_jitter: tuple[float, float] = (1.0, 1.0)
                 ) -> tf.data.Dataset:
    """Build the input pipeline for ``samples`` (see the module docstring for what it does).

    Args:
        samples: images (with masks for segmentation), e.g. ``manifest["train"]``.
        task: "detect" or "segment".
        image_size: model input side S.
        batch_size: images per batch.
        training: shuffle (and augment by default); False gives a fixed order, no augmentation.
        augment: override augmentation (default: on when training).
        cache: "memory" | "disk" | "none" | "auto" (memory if the decoded estimate fits
            ``cache_budget_bytes``, else disk in ``cache_dir``, else streaming).
        cache_budget_bytes: memory budget for "auto" (the hardware plan's ``cache_budget_bytes``).
        cache_dir: folder for the disk cache (file named after the data and settings).
        shuffle_buffer: shuffle buffer after a cache (streaming shuffles all file names instead).
        prefetch: batches to prefetch; None = AUTOTUNE.
        deterministic: fixed order and seeded augmentation (identical batches run to run).
        seed: seed for order and augmentation in deterministic mode (and the cache order).
        drop_remainder: drop the last incomplete batch.
        num_parallel_calls: decode parallelism; None = AUTOTUNE.
        jit_augment: compile batch augmentation with XLA (set False if XLA is unavailable).
        shard_policy: how tf.distribute splits the input between ``num_workers`` workers
            (``fisuras.distribute.choose_sharding`` picks it): "file" = each worker reads its own
            1/num_workers of the files (TF fills in the worker through the HINT auto-shard
            policy); "data" = every worker reads everything in the same order and keeps its
            part of each batch; None = TF's default (AUTO).
        num_workers: workers in the cluster (for "file": shards are evened out to equal sizes).
        crops_by_area: segmentation training: a photo gives ``crops_per_image`` random crops
            per epoch (its area in crops) instead of one.
        min_steps: segmentation training: go over the crops as many times as needed for at
            least this many batches per epoch (``epoch_crops``).
        scale_jitter: segmentation training: each crop's window side is S times a factor drawn
            log-uniformly from this range, then resized to S (image bilinear, mask thresholded
            at half), so cracks are seen a little wider and thinner than they are.

    Returns:
        ``tf.data.Dataset`` of ``(uint8 images [B,S,S,3], float32 targets)``.

    Example:
        >>> ds = make_dataset(manifest["train"], task="detect", image_size=224,  # doctest: +SKIP
        ...                   batch_size=64, training=True,
        ...                   cache_budget_bytes=plan.cache_budget_bytes)
    """
    samples = list(samples)
    _validate(samples, task, image_size, batch_size)
    augment = training if augment is None else augment
    # Multi-worker DATA sharding keeps, on each worker, its part of every batch: every worker
    # must then produce the same elements in the same order (seeded, deterministic).
    # Evaluation is always in sample order: predictions are matched back to their files.
    deterministic = deterministic or shard_policy == "data" or not training
    if shard_policy not in (None, *_AUTO_SHARD) or (shard_policy == "file" and num_workers < 2):
        raise ValueError(f"shard_policy={shard_policy!r} with num_workers={num_workers}; allowed: "
                         "None, 'data', 'off', or 'file' with 2 or more workers")
    seg = task == "segment"
    # Segmentation keeps each image's own size: the headers give the cache estimate and the
    # validation tile count (read once, only when one of them is needed).
    tiled = seg and not (training and augment)
    by_area = seg and training and augment and crops_by_area
    sizes = ([header_size(s.image) for s in samples]
             if seg and (tiled or cache != "none" or by_area) else None)
    plan = describe_cache(samples, task=task, image_size=image_size, training=training,
                          augment=augment, cache=cache, cache_budget_bytes=cache_budget_bytes,
                          cache_dir=cache_dir, image_sizes=sizes)
    parallel = AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    if plan.mode != "none" and training:
        # Mix the cached order once (class folders are sorted): the shuffle buffer then only
        # has to mix locally.
        samples = [samples[i] for i in np.random.default_rng(seed).permutation(len(samples))]

    fused_crop = task == "detect" and training and augment and plan.mode == "none"
    decodable = _window_decodable(samples, image_size) if fused_crop else None
    # Some files need the whole-image decoder: then (only then) a branch per image.
    mixed = decodable is not None and not all(decodable)
    ds = _source(samples, seg, decodable if mixed else None)
    if shard_policy == "file":
        ds = _shard_files(ds, len(samples), num_workers)
    if training and plan.mode == "none":
        ds = ds.shuffle(len(samples), seed=seed if deterministic else None,
                        reshuffle_each_iteration=True)
    if fused_crop:  # decode only the crop window: the cheapest path for JPEG patches
        ds = _with_seeds(ds, seed, deterministic)
        ds = ds.map(_crop_decoder(image_size, mixed), num_parallel_calls=parallel,
                    deterministic=deterministic)
    else:
        ds = ds.map(_base_decoder(task, image_size, keep_resolution(task, training, augment)),
                    num_parallel_calls=parallel, deterministic=deterministic)
        if plan.mode == "memory":
            ds = ds.cache()
        elif plan.mode == "disk":
            clear_interrupted_cache(plan.path)
            ds = ds.cache(plan.path)
        elements = len(samples)
        if seg and training and augment and (crops_by_area or min_steps):
            # An epoch: every photo about once at the crop size (several crops of a large one),
            # repeated until it has ``min_steps`` batches (see ``crops_per_image``).
            crops = (sum(crops_per_image(*size, image_size) for size in sizes) if by_area
                     else len(samples))
            if by_area:
                ds = ds.flat_map(_crop_copies(image_size))
            elements = epoch_crops(crops, batch_size, min_steps)
            if elements > crops:  # round again until the epoch has min_steps batches
                ds = ds.repeat().take(elements)
            if shard_policy != "file":
                ds = ds.apply(tf.data.experimental.assert_cardinality(elements))
        if training and plan.mode != "none":
            ds = ds.shuffle(min(shuffle_buffer, elements),
                            seed=seed if deterministic else None, reshuffle_each_iteration=True)
        if training and augment:
            ds = _with_seeds(ds, seed, deterministic)
            ds = ds.map(_random_crop(image_size, seg, scale_jitter), num_parallel_calls=parallel,
                        deterministic=deterministic)
        elif tiled:
            ds = ds.flat_map(_validation_tiles(image_size))
            if shard_policy != "file":
                # flat_map hides the count, and Keras warns "input ran out of data" on datasets
                # of unknown length: the grid's size follows from the image headers. (A file
                # shard holds only part of ``samples``; its count stays unknown.)
                tiles = sum(tile_count(*size, image_size) for size in sizes)
                ds = ds.apply(tf.data.experimental.assert_cardinality(tiles))

    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=parallel,
                  deterministic=deterministic)
    finish = _batch_augmenter(jit_augment) if (training and augment) else _finish_batch
    shapes = _static_shapes(image_size, seg)  # models need known H, W (U-Net upsampling)
    ds = ds.map(lambda *batch: shapes(*finish(*batch)), num_parallel_calls=parallel,
                deterministic=deterministic)
    ds = ds.prefetch(AUTOTUNE if prefetch is None else prefetch)
    options = tf.data.Options()
    options.deterministic = deterministic
    if shard_policy is not None:
        options.experimental_distribute.auto_shard_policy = _AUTO_SHARD[shard_policy]
    return ds.with_options(options)


def describe_cache(samples: Sequence[Sample], *, task: str, image_size: int, training: bool,
                   augment: bool | None = None, cache: str = "auto",
                   cache_budget_bytes: int = 2**30, cache_dir: str | None = None,
                   image_sizes: Sequence[tuple[int, int]] | None = None) -> CachePlan:
    """The cache decision ``make_dataset`` will take, with its reason (for logs and reports).

    Reads image headers (segmentation, unless ``image_sizes`` gives them) and file stats (disk
    cache name).
    """
    augment = training if augment is None else augment
    if image_sizes is None and task == "segment" and cache in ("auto", "memory", "disk"):
        image_sizes = [header_size(s.image) for s in samples]
    estimate = estimate_decoded_bytes(samples, image_size, task, training=training,
                                      augment=augment, image_sizes=image_sizes)
    key = "unused"
    if cache_dir is not None and cache in ("auto", "disk"):
        stats = [_stat(s.image) + _stat(s.mask) for s in samples]
        key = f"{task}-{image_size}-" + dataset_key(
            samples, task, image_size, keep_resolution(task, training, augment), stats=stats)
    return plan_cache(cache, estimate, cache_budget_bytes, cache_dir, key)


def clear_interrupted_cache(path: str) -> list[Path]:
    """Remove what an interrupted cache fill left at ``path`` (a complete cache is kept).

    tf.data refuses to fill a cache whose lockfile exists, so one crash would block every later
    run. A disk cache belongs to one run at a time (its name includes the data and settings);
    the leftovers of an unfinished fill are therefore stale. Returns the files removed.
    """
    prefix = Path(path)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    if prefix.with_name(prefix.name + ".index").exists():
        return []
    stale = [*prefix.parent.glob(prefix.name + "_*.lockfile"),
             *prefix.parent.glob(prefix.name + "*.tempstate*")]
    for file in stale:
        file.unlink(missing_ok=True)
    return stale


# --- steps ------------------------------------------------------------------------------------

def _validate(samples: list[Sample], task: str, image_size: int, batch_size: int) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if not samples:
        raise ValueError("make_dataset got no samples")
    if image_size < 8 or batch_size < 1:
        raise ValueError(f"image_size must be >= 8 and batch_size >= 1, got {image_size}, "
                         f"{batch_size}")
    if task == "segment":
        missing = [s.image for s in samples if s.mask is None]
        if missing:
            raise ValueError(f"{len(missing)} segmentation samples have no mask, e.g. "
                             f"{missing[0]}")
    else:
        unlabelled = [s.image for s in samples if s.label is None]
        if unlabelled:
            raise ValueError(f"{len(unlabelled)} samples have no label, e.g. {unlabelled[0]}")


def _stat(path: str | None) -> tuple:
    if path is None:
        return ()
    info = os.stat(path)
    return (info.st_size, info.st_mtime_ns)


_AUTO_SHARD = {
    "file": tf.data.experimental.AutoShardPolicy.HINT,
    "data": tf.data.experimental.AutoShardPolicy.DATA,
    "off": tf.data.experimental.AutoShardPolicy.OFF,
}


def _shard_files(ds: tf.data.Dataset, n_files: int, num_workers: int) -> tf.data.Dataset:
    """Each worker's own files: tf.distribute replaces the SHARD_HINTs with (workers, index).

    TF's FILE policy only finds reader datasets (TFRecord, text lines), not a list of image
    paths, hence the hint. Shards are made equal (at most ``num_workers - 1`` files left out,
    always the same ones): workers with unequal step counts would wait on each other for ever.
    """
    if num_workers > 1:
        ds = ds.take(n_files - n_files % num_workers)
    hint = tf.data.experimental.SHARD_HINT
    # The shard's size stays unknown to tf.data on purpose: a distributed dataset would report
    # the whole-data step count divided by the workers, and Keras would cut epochs short. Keras
    # counts the steps of the first epoch instead (and warns once that the input "ran out").
    return ds.shard(hint, hint)


def _source(samples: list[Sample], seg: bool,
            window_decodable: list[bool] | None = None) -> tf.data.Dataset:
    """(image path, mask path) or (image path, label[, window-decodable flag]) per sample."""
    images = tf.constant([s.image for s in samples])
    if seg:
        return tf.data.Dataset.from_tensor_slices((images, tf.constant([s.mask for s in samples])))
    labels = tf.constant([[float(s.label)] for s in samples], dtype=tf.float32)
    if window_decodable is None:
        return tf.data.Dataset.from_tensor_slices((images, labels))
    return tf.data.Dataset.from_tensor_slices((images, labels, tf.constant(window_decodable)))


def _window_decodable(samples: list[Sample], image_size: int) -> list[bool]:
    """Per sample: a JPEG of side ``crop_source_side(S)``, whose crop window can be decoded alone.

    Read from the file headers once, when the dataset is built, rather than checked per image in
    the pipeline, where the check and its branch cost more than that every epoch (figures:
    BENCHMARKS.md, 'Input pipeline').
    """
    side = crop_source_side(image_size)
    return [is_jpeg_of_size(s.image, side, side) for s in samples]


def _with_seeds(ds: tf.data.Dataset, seed: int, deterministic: bool) -> tf.data.Dataset:
    """Pair every element with a random int64 (a fixed sequence for a seed in deterministic mode):
    its crop window (``_window``) and, once batched, its flips and colour (``_batch_uniforms``)."""
    seeds = tf.data.Dataset.random(seed=seed if deterministic else None,
                                   rerandomize_each_iteration=True)
    return tf.data.Dataset.zip(ds, seeds)


def _batch_uniforms(seeds: tf.Tensor) -> tf.Tensor:
    """Uniforms in [0, 1), one row of 5 per element (columns ``_TRANSPOSE`` ... ``_CONTRAST``),
    drawn from the batch's element seeds (stateless: same seeds, same draw)."""
    return tf.random.stateless_uniform([tf.shape(seeds)[0], 5],
                                       seed=tf.stack([seeds[0], seeds[-1]]))


def _decode_rgb(contents: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _decode_mask(contents: tf.Tensor) -> tf.Tensor:
    """uint8 {0, 1} [H, W, 1] by the one mask rule (see ``fisuras.data.images``)."""
    pixels = tf.io.decode_image(contents, channels=3, expand_animations=False)
    brightest = tf.reduce_max(pixels, axis=-1, keepdims=True)
    threshold = tf.where(tf.reduce_max(brightest) <= 1, tf.constant(0, tf.uint8),
                         tf.constant(127, tf.uint8))
    mask = tf.cast(brightest > threshold, tf.uint8)
    mask.set_shape([None, None, 1])
    return mask


def _resize(image: tf.Tensor, height, width, method: str = "bilinear") -> tf.Tensor:
    """Resize a uint8 image (no work when it already has that size).

    Images: bilinear, except when shrinking by more than 4/3, where area averaging takes over
    so a 1-2 px crack is averaged into fewer pixels instead of being skipped between samples
    (plain bilinear keeps at least a third of a 1 px line's contrast up to that factor). TF's
    antialiased bilinear does the same job several times slower (figures: BENCHMARKS.md, 'Input
    pipeline', run F). Masks: "nearest".
    """
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    size = tf.stack([height, width])

    def resized():
        if method == "nearest":
            return tf.image.resize(image, size, method="nearest")
        scale = tf.reduce_min(tf.cast(size, tf.float32) / tf.cast(shape[:2], tf.float32))
        out = tf.cond(scale < 0.75,
                      lambda: tf.image.resize(image, size, method="area"),
                      lambda: tf.image.resize(image, size, method="bilinear"))
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    return tf.cond(same, lambda: image, resized)


def keep_resolution(task: str, training: bool, augment: bool) -> bool:
    """Whether decoded images keep (about) their own size for crops or tiles taken later.

    Example:
        >>> keep_resolution("segment", training=False, augment=False)
        True
    """
    return task == "segment" or (training and augment)


def _base_decoder(task: str, image_size: int, crops_follow: bool):
    """The pre-cache step: decoded images at the size later steps (or the model) need."""
    if task == "detect":
        side = crop_source_side(image_size) if crops_follow else image_size

        def load_detect(path, label):
            return _resize(_decode_rgb(tf.io.read_file(path)), side, side), label
        return load_detect

    # Plain TF ops only (``crops_follow`` is a Python bool): AutoGraph has nothing to convert,
    # and converting this closure made it warn "closure mismatch".
    @tf.autograph.experimental.do_not_convert
    def load_segment(path, mask_path):
        image = _decode_rgb(tf.io.read_file(path))
        mask = _decode_mask(tf.io.read_file(mask_path))
        size_image, size_mask = tf.shape(image)[:2], tf.shape(mask)[:2]
        tf.debugging.Assert(tf.reduce_all(tf.equal(size_image, size_mask)),
                            ["mask size differs from image:", mask_path, size_mask, size_image])
        if crops_follow:  # keep the resolution; upscale only images smaller than S
            scale = tf.maximum(1.0, image_size / tf.cast(tf.reduce_min(size_image), tf.float32))
            height = tf.maximum(image_size, tf.cast(tf.math.ceil(
                tf.cast(size_image[0], tf.float32) * scale - 1e-6), tf.int32))
            width = tf.maximum(image_size, tf.cast(tf.math.ceil(
                tf.cast(size_image[1], tf.float32) * scale - 1e-6), tf.int32))
        else:
            height = width = image_size
        return _resize(image, height, width), _resize(mask, height, width, "nearest")
    return load_segment


def _window(seed: tf.Tensor, height, width, side: int,
            column_step: int = 1) -> tuple[tf.Tensor, tf.Tensor]:
    """Top-left corner of a random ``side`` x ``side`` window from an element's int64 seed.

    The seed modulo the number of positions: uniform over them up to a relative bias of
    (positions / 2**63), negligible.
    ``column_step``: left edges on a grid of that many pixels (see ``DETECT_COLUMN_STEP``).
    """
    rows = tf.cast(height - side + 1, tf.int64)
    columns = tf.cast((width - side) // column_step + 1, tf.int64)
    top = tf.math.floormod(seed, rows)
    left = tf.math.floormod(tf.math.floordiv(seed, rows), columns) * column_step
    return tf.cast(top, tf.int32), tf.cast(left, tf.int32)


def _crop_copies(image_size: int):
    """One decoded photo (and mask) -> ``crops_per_image`` copies, each cropped at random later.

    The same rule as ``cache_plan.crops_per_image``, in TF ops on the decoded shape.
    """
    def copies(image, mask):
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        count = tf.maximum(tf.constant(1, tf.int64),
                           tf.cast(tf.round(shape[0] * shape[1] / image_size**2), tf.int64))
        return tf.data.Dataset.from_tensors((image, mask)).repeat(count)
    return copies


def _random_crop(image_size: int, seg: bool, scale_jitter: tuple[float, float] = (1.0, 1.0)):
    """Post-cache crop: the same random window on the image (and its mask).

    With ``scale_jitter`` (segmentation), the window's side is S times a log-uniform factor
    from the range (never larger than the image), resized back to S.
    """
    step = 1 if seg else DETECT_COLUMN_STEP
    jitter = seg and tuple(scale_jitter) != (1.0, 1.0)
    log_low, log_high = (float(np.log(f)) for f in scale_jitter)

    def crop(element, seed):
        image, target = element
        shape = tf.shape(image)
        side = image_size
        if jitter:
            draw = tf.random.stateless_uniform([], seed=tf.stack([seed, tf.constant(7, tf.int64)]),
                                               minval=log_low, maxval=log_high)
            side = tf.cast(tf.round(image_size * tf.exp(draw)), tf.int32)
            side = tf.minimum(side, tf.reduce_min(shape[:2]))
        top, left = _window(seed, shape[0], shape[1], side, step)
        image = tf.slice(image, [top, left, 0], [side, side, 3])
        if seg:
            target = tf.slice(target, [top, left, 0], [side, side, 1])
        if jitter:
            image = _resize(image, image_size, image_size)
            # bilinear then half: a resized thin crack keeps its centre line (nearest drops rows)
            target = tf.cast(tf.image.resize(tf.cast(target, tf.float32),
                                             [image_size, image_size]) >= 0.5, tf.uint8)
        return image, target, seed
    return crop


def _validation_tiles(image_size: int):
    """One image and mask -> a dataset of their S x S tiles (rows, then columns).

    The tiles sit on prediction's grid, :func:`fisuras.data.tiles.segment_grid` (called here, so
    there is one rule): ``TILE_OVERLAP`` apart rounded to the 32-px alignment, the last ones
    running past the bottom and right edges into a mirror-reflected border, as the tiler does.
    (The decoded image is at least S on each side, so the border is narrower than the image.)
    """
    def corners_of(height, width):
        return np.array(segment_grid(int(height), int(width), image_size), np.int32)

    def tiles(image, mask):
        shape = tf.shape(image)
        corners = tf.numpy_function(corners_of, [shape[0], shape[1]], tf.int32, stateful=False)
        corners = tf.reshape(corners, [-1, 2])
        border = [[0, tf.reduce_max(corners[:, 0]) + image_size - shape[0]],
                  [0, tf.reduce_max(corners[:, 1]) + image_size - shape[1]], [0, 0]]
        image, mask = tf.pad(image, border, "REFLECT"), tf.pad(mask, border, "REFLECT")

        def cut(corner):
            return (tf.slice(image, [corner[0], corner[1], 0], [image_size, image_size, 3]),
                    tf.slice(mask, [corner[0], corner[1], 0], [image_size, image_size, 1]))
        return tf.data.Dataset.from_tensor_slices(corners).map(cut)
    return tiles


def _crop_decoder(image_size: int, mixed: bool):
    """Streaming detection training: decode only a random crop window of S*8/7-sided JPEGs.

    ``mixed``: elements carry ``_window_decodable``'s flag, and the files it excludes are
    decoded whole, resized and cropped; otherwise every file is such a JPEG (no branch).
    """
    side = crop_source_side(image_size)

    def load(element, seed):
        path, label, *flag = element
        contents = tf.io.read_file(path)
        top, left = _window(seed, side, side, image_size, DETECT_COLUMN_STEP)
        window = tf.stack([top, left, image_size, image_size])

        def jpeg_window():
            # The fast integer IDCT: less decode time (figure: BENCHMARKS.md, 'Input
            # pipeline'); its error (a grey level or two) is far below the brightness
            # augmentation that follows.
            return tf.io.decode_and_crop_jpeg(contents, window, channels=3,
                                              dct_method="INTEGER_FAST")

        def other():
            full = _resize(_decode_rgb(contents), side, side)
            return tf.slice(full, [top, left, 0], [image_size, image_size, 3])

        image = tf.cond(flag[0], jpeg_window, other) if mixed else jpeg_window()
        image.set_shape([image_size, image_size, 3])
        return image, label, seed
    return load


def _static_shapes(image_size: int, seg: bool):
    """Declare ``[B, S, S, 3]`` (and ``[B, S, S, 1]`` masks): crops of varying images lose it."""
    def declare(images, targets):
        images = tf.ensure_shape(images, [None, image_size, image_size, 3])
        if seg:
            targets = tf.ensure_shape(targets, [None, image_size, image_size, 1])
        return images, targets
    return declare


def _finish_batch(images, targets):
    """No augmentation: masks become float32."""
    return images, tf.cast(targets, tf.float32)


def _dihedral(x: tf.Tensor, randoms: tf.Tensor) -> tf.Tensor:
    """One of the 8 symmetries of a square per sample: optional transpose, flip up/down, flip
    left/right (``randoms`` from ``_batch_uniforms``), so images and masks get the same one."""
    def pick(column):
        return tf.reshape(randoms[:, column] < 0.5, [-1, 1, 1, 1])

    x = tf.where(pick(_TRANSPOSE), tf.transpose(x, [0, 2, 1, 3]), x)
    x = tf.where(pick(_FLIP_ROWS), tf.reverse(x, [1]), x)
    return tf.where(pick(_FLIP_COLUMNS), tf.reverse(x, [2]), x)


def _colour(images: tf.Tensor, randoms: tf.Tensor) -> tf.Tensor:
    """Brightness +-BRIGHTNESS_DELTA and contrast around the image mean, per sample.

    y = (x - mean) * contrast + mean + brightness, in 16-bit fixed point (steps of 1/64):
    twice as fast as float32 on a CPU, and far finer than the 8-bit output.
    """
    low, high = CONTRAST_RANGE
    contrast = low + (high - low) * randoms[:, _CONTRAST]
    brightness = (2 * randoms[:, _BRIGHTNESS] - 1) * BRIGHTNESS_DELTA
    # Mean of every 8th pixel (1/64 of them): as good a pivot, and a full reduction is slow.
    mean = tf.reduce_mean(tf.cast(images[:, ::8, ::8, :], tf.float32), axis=[1, 2, 3])
    scale = tf.reshape(tf.cast(tf.round(contrast * 64), tf.int16), [-1, 1, 1, 1])
    offset = tf.round((mean * (1 - contrast) + brightness) * 64 + 32)  # +32: round on >> 6
    offset = tf.reshape(tf.cast(offset, tf.int16), [-1, 1, 1, 1])
    # |255 * 77 + 71 * 64| < 2**15: no overflow
    shifted = tf.bitwise.right_shift(tf.cast(images, tf.int16) * scale + offset, 6)
    return tf.cast(tf.clip_by_value(shifted, 0, 255), tf.uint8)


# Each step is its own XLA function: fused into one, XLA would run the colour arithmetic along
# transposed memory and be slower (figures: BENCHMARKS.md, 'Input pipeline'). Module-level, so
# compilations are reused across datasets.
_DIHEDRAL_XLA = tf.function(_dihedral, jit_compile=True, reduce_retracing=True)
_COLOUR_XLA = tf.function(_colour, jit_compile=True, reduce_retracing=True)


def _batch_augmenter(jit: bool):
    """Flips/rotations (image and mask alike), then brightness/contrast (image only)."""
    dihedral = _DIHEDRAL_XLA if jit else _dihedral
    colour = _COLOUR_XLA if jit else _colour

    def augment(images, targets, seeds):
        randoms = _batch_uniforms(seeds)
        images = colour(dihedral(images, randoms), randoms)
        if targets.shape.rank == 4:
            targets = dihedral(targets, randoms)
        return images, tf.cast(targets, tf.float32)
    return augment
