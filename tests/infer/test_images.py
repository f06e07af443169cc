"""Reading photos for inference, turning files/folders/globs into a photo list, overlays."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fisuras.infer.images import (
    BOX_RGB,
    UnreadableImageError,
    expand_inputs,
    heatmap_overlay,
    mask_overlay,
    read_photo,
)


def test_phone_photo_is_turned_upright_by_exif(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # white band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned, display rotated 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    photo = read_photo(tmp_path / "phone.jpg")
    assert photo.shape == (40, 20, 3)  # shown upright: tall, not wide
    assert photo[:10].mean() > 200 and photo[-10:].mean() < 50  # the band is now at the top


def test_grey_and_16_bit_photos_become_8_bit_rgb(tmp_path):
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(tmp_path / "grey.png")
    wide = np.full((8, 8), 40000, np.uint16)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    grey, sixteen = read_photo(tmp_path / "grey.png"), read_photo(tmp_path / "wide.png")
    assert grey.shape == sixteen.shape == (8, 8, 3) and grey.dtype == sixteen.dtype == np.uint8
    assert (grey == 90).all() and (sixteen == 40000 >> 8).all()


def test_unreadable_files_raise_one_error_type_naming_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("empty.png", "missing.jpg"):
        with pytest.raises(UnreadableImageError, match=name):
            read_photo(tmp_path / name)


def test_expand_inputs_folders_globs_and_problems(tmp_path):
    for name in ("a/1.jpg", "a/deep/2.PNG", "a/notes.txt", "a/.hidden.jpg", "b/3.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    photos, problems = expand_inputs([
        str(tmp_path / "a"), str(tmp_path / "b" / "*.jpg"), str(tmp_path / "a" / "1.jpg"),
        str(tmp_path / "empty"), str(tmp_path / "*.bmp"), str(tmp_path / "gone.jpg"),
    ])  # fmt: skip
    assert [p.relative_to(tmp_path).as_posix() for p in photos] == [
        "a/1.jpg", "a/deep/2.PNG", "b/3.jpg"  # sorted, recursive, no duplicates, photos only
    ]
    assert [reason for _, reason in problems] == [
        "folder holds no images", "no image matches this pattern", "no such file or folder"
    ]


# --- overlays of large photos (issue 14: an 8000 x 8000 photo peaked at 5.7 GB) ---------------

def peak_bytes(call) -> int:
    """Peak bytes NumPy allocated during ``call()`` (NumPy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def large_photo(side: int = 2000) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)


def test_overlays_of_a_large_photo_need_about_the_result_not_float64_copies():
    photo = large_photo()
    mask = np.zeros(photo.shape[:2], bool)
    mask[::3] = True
    starts = np.arange(0, 2000 - 224 + 1, 168)
    boxes = np.array([[(y, x, y + 224, x + 224) for x in starts] for y in starts], np.int32)
    heat = np.random.default_rng(1).random(boxes.shape[:2]).astype(np.float32)
    # The result alone is photo.nbytes; before, float64/float32 full-size copies took 12-25x.
    assert peak_bytes(lambda: mask_overlay(photo, mask)) < 3 * photo.nbytes
    assert peak_bytes(lambda: heatmap_overlay(photo, heat, boxes, 0.5)) < 3 * photo.nbytes


def test_mask_overlay_tints_crack_pixels_only():
    photo = np.full((300, 4, 3), 100, np.uint8)  # taller than one blending band
    mask = np.zeros((300, 4), bool)
    mask[::7, 1] = True
    out = mask_overlay(photo, mask, alpha=0.6)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    assert (out[mask] == [193, 40, 40]).all()  # 0.4 * 100 + 0.6 * (255, 0, 0), rounded
    assert (out[~mask] == 100).all()


def test_heatmap_overlay_tints_by_probability_and_frames_cracked_patches_as_pillow_does():
    photo = np.full((400, 300, 3), 100, np.uint8)
    boxes = np.array([[(0, 0, 300, 200), (100, 100, 400, 300)]], np.int32)
    heat = np.array([[0.4, 0.8]], np.float32)
    out = heatmap_overlay(photo, heat, boxes, threshold=0.5, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    assert out[50, 50].tolist() == [131, 80, 80]  # heat 0.4: 0.8 * 100 + 0.2 * (255, 0, 0)
    assert out[250, 150].tolist() == [162, 60, 60]  # the overlap takes the higher score, 0.8
    # the cracked patch (only) is framed in yellow, 1 px per 200 px of the shorter side, inwards
    expected = Image.fromarray(out.copy())
    ImageDraw.Draw(expected).rectangle((100, 100, 299, 399), outline=BOX_RGB, width=1)
    np.testing.assert_array_equal(out, np.asarray(expected))
    assert out[100, 150].tolist() == list(BOX_RGB) and out[0, 50].tolist() != list(BOX_RGB)
    thick = heatmap_overlay(np.zeros((1000, 1000, 3), np.uint8), np.array([[0.9]]),
                            np.array([[(10, 20, 610, 700)]], np.int32), 0.5)  # fmt: skip
    drawn = Image.fromarray(np.zeros((1000, 1000, 3), np.uint8))
    ImageDraw.Draw(drawn).rectangle((20, 10, 699, 609), outline=BOX_RGB, width=5)
    frame = np.asarray(drawn).any(axis=-1)
    np.testing.assert_array_equal((thick == BOX_RGB).all(axis=-1), frame)
