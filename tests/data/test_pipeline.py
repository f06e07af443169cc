"""The tf.data pipeline: shapes, determinism, mask alignment on a real pair, caches, decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fisuras.data import Sample, read_dataset
from fisuras.data.cache_plan import (
    crop_source_side,
    estimate_decoded_bytes,
    plan_cache,
    training_size,
)
from fisuras.data.images import binarize_mask
from fisuras.data.tiles import canvas_shape, segment_grid
from tests.data.helpers import make_class_tree, stripe_mask, write_image, write_mask

tf = pytest.importorskip("tensorflow")
from fisuras.data.pipeline import describe_cache, make_dataset  # noqa: E402

S = 32  # model input side for these tests


@pytest.fixture(scope="module")
def detect_samples(tmp_path_factory) -> list[Sample]:
    """10 JPEGs of side crop_source_side(S) (fused crop path) and 4 PNGs of another size."""
    root = tmp_path_factory.mktemp("detect")
    side = crop_source_side(S)
    for i in range(10):
        write_image(root / ("Positive" if i % 2 else "Negative") / f"{i}.jpg", seed=i,
                    size=(side, side))
    for i in range(4):
        write_image(root / ("Positive" if i % 2 else "Negative") / f"p{i}.png", seed=20 + i,
                    size=(45, 50))
    return read_dataset(root).samples


@pytest.fixture(scope="module")
def seg_samples(tmp_path_factory) -> list[Sample]:
    root = tmp_path_factory.mktemp("seg")
    sizes = [(40, 60), (24, 30), (32, 32), (50, 36)]  # one smaller than S: upscaled for crops
    for i, size in enumerate(sizes):
        write_image(root / "images" / f"{i}.png", seed=i, size=size)
        write_mask(root / "masks" / f"{i}.png", stripe_mask(size, 3 + i, 4))
    return read_dataset(root).samples


def _batches(ds) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in ds]


@pytest.mark.parametrize("training", [True, False])
def test_detect_shapes_and_dtypes(detect_samples, training):
    ds = make_dataset(detect_samples, task="detect", image_size=S, batch_size=4,
                      training=training, cache="none")
    batches = _batches(ds)
    assert sum(len(x) for x, _ in batches) == len(detect_samples)
    for x, y in batches:
        assert x.dtype == np.uint8 and x.shape[1:] == (S, S, 3)
        assert y.dtype == np.float32 and y.shape == (len(x), 1)
    if not training:  # fixed order: labels follow the samples
        labels = np.concatenate([y for _, y in batches])[:, 0]
        assert labels.tolist() == [s.label for s in detect_samples]


@pytest.mark.parametrize("training", [True, False])
def test_segment_shapes_and_dtypes(seg_samples, training):
    ds = make_dataset(seg_samples, task="segment", image_size=S, batch_size=3,
                      training=training, cache="memory")
    assert ds.element_spec[0].shape.as_list() == [None, S, S, 3]  # static: U-Nets need it
    assert ds.element_spec[1].shape.as_list() == [None, S, S, 1]
    for x, y in _batches(ds):
        assert x.dtype == np.uint8 and x.shape[1:] == (S, S, 3)
        assert y.dtype == np.float32 and y.shape[1:] == (S, S, 1)
        assert set(np.unique(y)) <= {0.0, 1.0}


def test_deterministic_mode_repeats_batches(detect_samples, seg_samples):
    for samples, task in ((detect_samples, "detect"), (seg_samples, "segment")):
        def build(samples=samples, task=task):
            return make_dataset(samples, task=task, image_size=S, batch_size=4, training=True,
                                cache="none", deterministic=True, seed=5)
        first, second = _batches(build()), _batches(build())
        assert len(first) == len(second)
        for (x1, y1), (x2, y2) in zip(first, second, strict=True):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
        # and augmentation did something: not the plain evaluation images
        plain = _batches(make_dataset(samples, task=task, image_size=S, batch_size=4,
                                      training=False, cache="none"))
        assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, plain, strict=False))


def test_crop_windows_reach_every_position_evenly_and_stay_inside():
    """The rule every random crop follows: a window per element seed (seed modulo positions)."""
    from fisuras.data.pipeline import _window

    seeds = tf.constant(list(tf.data.Dataset.random(seed=0).take(5400).as_numpy_iterator()))
    height, width, side, step = 40, 50, 32, 8  # 9 rows x 3 columns (0, 8, 16) of positions
    tops, lefts = (t.numpy() for t in _window(seeds, height, width, side, column_step=step))
    assert tops.min() >= 0 and tops.max() + side <= height
    assert lefts.min() >= 0 and lefts.max() + side <= width and (lefts % step == 0).all()
    corners, counts = np.unique(np.stack([tops, lefts], 1), axis=0, return_counts=True)
    assert len(corners) == 9 * 3
    assert counts.min() > 0.6 * 200 and counts.max() < 1.4 * 200  # 5,400 / 27 = 200 each


def test_only_jpegs_of_the_crop_source_side_are_decoded_by_window(tmp_path: Path):
    """Streaming detection decodes just the crop window of JPEGs it can; the rest whole."""
    from fisuras.data.pipeline import _window_decodable

    side = crop_source_side(S)
    files = [write_image(tmp_path / "a.jpg", seed=1, size=(side, side)),
             write_image(tmp_path / "b.jpg", seed=2, size=(side, side + 8)),
             write_image(tmp_path / "c.png", seed=3, size=(side, side))]
    not_an_image = tmp_path / "d.jpg"
    not_an_image.write_text("not a JPEG")
    samples = [Sample(str(path), 1) for path in [*files, not_an_image]]
    assert _window_decodable(samples, S) == [True, False, False, False]
    for subset in (samples[:3], samples[:1] * 3):  # mixed, then only window-decodable files
        ds = make_dataset(subset, task="detect", image_size=S, batch_size=3, training=True,
                          cache="none")
        (x, _), = _batches(ds)
        assert x.shape == (3, S, S, 3)


def _painted_cfd_pairs(shared_data: Path, tmp_path: Path) -> list[Sample]:
    """Three CFD masks, each with an image painted from itself (white crack on black)."""
    pairs = []
    for sample in read_dataset(shared_data / "seg_cfd").samples[:3]:
        mask = binarize_mask(np.asarray(Image.open(sample.mask)))
        painted = write_image(tmp_path / f"{Path(sample.image).stem}.png",
                              np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2))
        pairs.append(Sample(str(painted), 1, None, sample.mask, "painted"))
    return pairs


def test_augmented_mask_stays_aligned_on_real_pair(shared_data: Path, tmp_path: Path):
    """An image painted with its own CFD mask must, after augmentation, still equal the mask."""
    pairs = _painted_cfd_pairs(shared_data, tmp_path)
    ds = make_dataset(pairs * 8, task="segment", image_size=96, batch_size=8, training=True,
                      cache="none", deterministic=True, seed=1)
    crack_pixels = 0
    for x, y in _batches(ds):
        # brightness/contrast move 0 and 255 but never across the middle grey
        np.testing.assert_array_equal(x[..., 0] > 127, y[..., 0] > 0.5)
        crack_pixels += int(y.sum())
    assert crack_pixels > 0  # the crops did hit cracks


def test_augmented_real_photo_is_darker_on_its_crack(shared_data: Path):
    samples = read_dataset(shared_data / "seg_cfd").samples[:4]
    ds = make_dataset(samples * 4, task="segment", image_size=96, batch_size=16, training=True,
                      cache="none", deterministic=True, seed=2)
    x, y = _batches(ds)[0]
    grey = x.mean(axis=-1)
    crack = y[..., 0] > 0.5
    assert crack.any() and grey[crack].mean() < grey[~crack].mean() - 10


def test_memory_and_disk_cache_give_the_same_batches(detect_samples, tmp_path: Path):
    def build(cache):
        return make_dataset(detect_samples, task="detect", image_size=S, batch_size=4,
                            training=True, cache=cache, cache_dir=str(tmp_path),
                            deterministic=True, seed=3)
    memory = build("memory")
    disk = build("disk")
    first_memory, first_disk = _batches(memory), _batches(disk)
    assert any(tmp_path.glob("fisuras-detect-*.tfcache*"))
    for (x1, y1), (x2, y2) in zip(first_memory, first_disk, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    again = _batches(disk)  # a second epoch reads the disk cache
    assert sum(len(x) for x, _ in again) == len(detect_samples)


def test_auto_cache_decision(detect_samples, tmp_path: Path):
    small = describe_cache(detect_samples, task="detect", image_size=S, training=True)
    assert small.mode == "memory"
    big = describe_cache(detect_samples, task="detect", image_size=S, training=True,
                         cache_budget_bytes=1000, cache_dir=str(tmp_path))
    assert big.mode == "disk" and big.path.startswith(str(tmp_path))
    nowhere = describe_cache(detect_samples, task="detect", image_size=S, training=True,
                             cache_budget_bytes=1000)
    assert nowhere.mode == "none" and "no cache_dir" in nowhere.reason


@pytest.mark.parametrize("mode,suffix", [("L", ".png"), ("RGBA", ".png"), ("CMYK", ".jpg"),
                                         ("P", ".png"), ("I;16", ".png"), ("RGB", ".bmp")])
def test_unusual_modes_decode_to_rgb(tmp_path: Path, mode, suffix):
    path = tmp_path / f"odd{suffix}"
    if mode == "I;16":
        Image.fromarray((np.arange(40 * 48).reshape(40, 48) * 30).astype(np.uint16)).save(path)
    else:
        write_image(path, seed=1, mode=mode)
    ds = make_dataset([Sample(str(path), 1)], task="detect", image_size=S, batch_size=1,
                      training=False, cache="none")
    x, y = _batches(ds)[0]
    assert x.shape == (1, S, S, 3) and y.tolist() == [[1.0]]
    assert x.std() > 0  # real pixels, not a blank


@pytest.mark.parametrize("on,mode,suffix", [(255, "L", ".png"), (1, "L", ".png"),
                                            ((0, 200, 0), "RGB", ".png"),
                                            ((255, 255, 255), "RGB", ".bmp")])
def test_mask_rule_matches_numpy_rule(tmp_path: Path, on, mode, suffix):
    mask = stripe_mask((S, S), 7, 5)
    write_image(tmp_path / "images" / "a.png", seed=2, size=(S, S))
    write_mask(tmp_path / "masks" / f"a{suffix}", mask, on=on, mode=mode)
    sample = read_dataset(tmp_path).samples[0]
    ds = make_dataset([sample], task="segment", image_size=S, batch_size=1, training=False,
                      cache="none")
    _, y = _batches(ds)[0]
    np.testing.assert_array_equal(y[0, ..., 0] > 0.5, mask)
    assert sample.label == 1


def test_bad_arguments(detect_samples):
    with pytest.raises(ValueError, match="task"):
        make_dataset(detect_samples, task="classify", image_size=S, batch_size=2, training=False)
    with pytest.raises(ValueError, match="no mask"):
        make_dataset(detect_samples, task="segment", image_size=S, batch_size=2, training=False)
    with pytest.raises(ValueError, match="cache"):
        make_dataset(detect_samples, task="detect", image_size=S, batch_size=2, training=False,
                     cache="ssd")


def test_estimates_and_plans_are_pure_arithmetic():
    samples = [Sample(f"/x/{i}.jpg", 1) for i in range(10)]
    train = estimate_decoded_bytes(samples, 224, "detect", training=True)
    evaluation = estimate_decoded_bytes(samples, 224, "detect")
    assert train == 10 * (256 * 256 * 3 + 1024) and evaluation == 10 * (224 * 224 * 3 + 1024)
    seg = estimate_decoded_bytes(samples[:2], 64, "segment", training=True,
                                 image_sizes=[(320, 480), (32, 48)])
    assert seg == (320 * 480 + 64 * 96) * 4 + 2 * 1024
    assert training_size(32, 48, 64) == (64, 96) and training_size(320, 480, 64) == (320, 480)
    assert plan_cache("auto", 10, 100, None, "k").mode == "memory"
    assert plan_cache("auto", 1000, 100, "/c", "k").path == "/c/fisuras-k.tfcache"


def test_large_detection_set_streams_with_full_shuffle(tmp_path: Path):
    """Streaming order differs between epochs and covers every file once per epoch."""
    root = make_class_tree(tmp_path, {"Positive": 1, "Negative": 0}, n_per_folder=8)
    samples = read_dataset(root).samples
    ds = make_dataset(samples, task="detect", image_size=16, batch_size=16, training=True,
                      augment=False, cache="none", deterministic=True, seed=9)
    epochs = [np.concatenate([x for x, _ in _batches(ds)]) for _ in range(2)]
    assert all(len(e) == 16 for e in epochs)
    assert not np.array_equal(epochs[0], epochs[1])
    key = [sorted(e.reshape(16, -1).sum(axis=1).tolist()) for e in epochs]
    assert key[0] == key[1]  # same images, other order


def test_interrupted_disk_cache_does_not_block_the_next_run(detect_samples, tmp_path: Path):
    def build():
        return make_dataset(detect_samples, task="detect", image_size=S, batch_size=4,
                            training=False, cache="disk", cache_dir=str(tmp_path))
    plan = describe_cache(detect_samples, task="detect", image_size=S, training=False,
                          cache="disk", cache_dir=str(tmp_path))
    # what a crash during the first epoch leaves behind
    Path(plan.path + "_0.lockfile").write_text("Created at: 0")
    Path(plan.path + "_0.data-00000-of-00001.tempstate123").write_bytes(b"partial")
    assert sum(len(x) for x, _ in _batches(build())) == len(detect_samples)
    assert Path(plan.path + ".index").exists()
    assert not list(tmp_path.glob("*.lockfile")) and not list(tmp_path.glob("*tempstate*"))
    assert sum(len(x) for x, _ in _batches(build())) == len(detect_samples)  # reads the cache


def test_evaluation_resize_keeps_a_one_pixel_crack(tmp_path: Path):
    """Shrinking 96 -> 32 samples every third column; area averaging keeps the thin line visible."""
    pixels = np.full((96, 96, 3), 200, np.uint8)
    pixels[:, 50] = 40  # a column that plain bilinear sampling (columns 1, 4, ... 49, 52) skips
    path = write_image(tmp_path / "line.png", pixels)
    x, _ = _batches(make_dataset([Sample(str(path), 1)], task="detect", image_size=S,
                                 batch_size=1, training=False, cache="none"))[0]
    columns = x[0].astype(float).mean(axis=(0, 2))
    assert columns.min() < 200 - 30


def test_segmentation_validation_tiles_a_real_photo_at_its_own_resolution(shared_data: Path):
    sample = read_dataset(shared_data / "seg_cfd").samples[0]
    image = tf.io.decode_image(tf.io.read_file(sample.image), channels=3).numpy()  # TF's JPEG
    mask = binarize_mask(np.asarray(Image.open(sample.mask)))
    height, width = mask.shape
    side = 96

    dataset = make_dataset([sample], task="segment", image_size=side, batch_size=16,
                           training=False, cache="memory")
    tiles = _batches(dataset)
    assert dataset.cardinality().numpy() == len(tiles)  # known in advance, for Keras
    x, y = (np.concatenate(parts) for parts in zip(*tiles, strict=True))

    # Prediction's grid over the whole photo, rows then columns, the last ones running past the
    # edges into a mirrored border: every tile is the photo's own pixels (no resizing), every
    # crack pixel is seen.
    corners = segment_grid(height, width, side)
    assert len(x) == len(corners)
    canvas_h, canvas_w = canvas_shape(corners, side)
    border = ((0, canvas_h - height), (0, canvas_w - width))
    image = np.pad(image, (*border, (0, 0)), mode="reflect")
    mask = np.pad(mask, border, mode="reflect")
    for (top, left), tile, tile_mask in zip(corners, x, y, strict=True):
        np.testing.assert_array_equal(tile, image[top:top + side, left:left + side])
        np.testing.assert_array_equal(tile_mask[..., 0] > 0.5,
                                      mask[top:top + side, left:left + side])
    covered = np.zeros_like(mask)
    for top, left in corners:
        covered[top:top + side, left:left + side] = True
    assert covered[:height, :width].all() and mask.any()


def test_an_epoch_by_area_gives_each_photo_its_area_in_crops():
    from fisuras.data.cache_plan import crops_per_image, epoch_crops

    # a 480 x 320 CrackForest photo: 2.3 crops of 256 px, 37.5 of 64 px; smaller than S: 1
    assert crops_per_image(320, 480, 256) == 2 and crops_per_image(320, 480, 64) == 38
    assert crops_per_image(128, 181, 256) == 1 and crops_per_image(40, 60, 32) == 2
    # 84 crops at batch 8 are 11 steps: 200 crops give the 25 steps asked for
    assert epoch_crops(84, 8, 25) == 200 and epoch_crops(84, 8, 0) == 84
    assert epoch_crops(400, 8, 25) == 400


@pytest.mark.parametrize(("by_area", "min_steps", "expected"), [
    (False, 0, 4),                 # one crop per photo (the previous recipe)
    (True, 0, 2 + 1 + 1 + 2),      # 40x60 -> 2, 24x30 (upscaled to 32x40) -> 1, 32x32 -> 1,
                                   # 50x36 -> 2 crops of 32 px
    (True, 5, 20),                 # 5 steps of 4: 20 crops, round the 6 again
])
def test_segmentation_epoch_length(seg_samples, by_area, min_steps, expected):
    ds = make_dataset(seg_samples, task="segment", image_size=S, batch_size=4, training=True,
                      cache="memory", deterministic=True, crops_by_area=by_area,
                      min_steps=min_steps)
    images = sum(x.shape[0] for x, _ in _batches(ds))
    assert images == expected


def test_scale_jitter_keeps_masks_binary_and_on_their_cracks(shared_data: Path, tmp_path: Path):
    """Painted with its own mask, a resized crop must still match its resized mask."""
    pairs = _painted_cfd_pairs(shared_data, tmp_path)
    ds = make_dataset(pairs * 8, task="segment", image_size=96, batch_size=8, training=True,
                      cache="none", deterministic=True, seed=1, scale_jitter=(0.5, 2.0))
    agree, total, crack = 0, 0, 0
    for x, y in _batches(ds):
        assert set(np.unique(y)) <= {0.0, 1.0}
        agree += int(((x[..., 0] > 127) == (y[..., 0] > 0.5)).sum())
        total += y[..., 0].size
        crack += int(y.sum())
    # image (bilinear, rounded) and mask (bilinear, thresholded at half) differ only at the
    # edges of resized cracks
    assert crack > 0 and agree / total > 0.995
