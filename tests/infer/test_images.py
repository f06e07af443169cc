"""Reading photos for inference, and turning files/folders/globs into a photo list."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fisuras.infer.images import UnreadableImageError, expand_inputs, read_photo


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
