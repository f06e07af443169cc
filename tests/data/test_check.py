"""Check: each kind of bad input is reported (and blocks), or is left out with skip_bad."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fisuras.data import (
    DataProblemsError,
    apply_check,
    check_dataset,
    read_dataset,
)
from tests.data.helpers import make_class_tree, make_seg_set, stripe_mask, write_image, write_mask


def _classes(root: Path) -> Path:
    return make_class_tree(root, {"Positive": 1, "Negative": 0}, n_per_folder=3)


def _kinds(report) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for p in report.problems:
        out.setdefault(p.kind, set()).add(Path(p.path).name)
    return out


def test_clean_dataset_is_ok(tmp_path: Path):
    desc = read_dataset(_classes(tmp_path))
    report = check_dataset(desc)
    assert report.ok and report.problems == [] and report.n_files == 6
    assert apply_check(desc, report, skip_bad=False).samples == desc.samples


def test_truncated_jpeg(tmp_path: Path):
    root = _classes(tmp_path)
    good = root / "Positive" / "000.jpg"
    data = good.read_bytes()
    (root / "Positive" / "cut.jpg").write_bytes(data[: len(data) // 2])
    report = check_dataset(read_dataset(root))
    assert _kinds(report) == {"unreadable": {"cut.jpg"}}
    assert not report.ok


@pytest.mark.parametrize("name,content", [
    ("notes.txt", b"field notes"),  # wrong suffix
    ("fake.jpg", b"this is not a jpeg at all"),  # right suffix, wrong content
])
def test_non_image_files(tmp_path: Path, name: str, content: bytes):
    root = _classes(tmp_path)
    (root / "Negative" / name).write_bytes(content)
    report = check_dataset(read_dataset(root))
    assert _kinds(report) == {"not_image": {name}}


def test_tiff_is_not_readable_by_the_pipeline(tmp_path: Path):
    root = _classes(tmp_path)
    write_image(root / "Negative" / "scan.png", seed=7, format="TIFF")  # TIFF named .png
    assert _kinds(check_dataset(read_dataset(root))) == {"not_image": {"scan.png"}}


def test_empty_class_folder(tmp_path: Path):
    root = make_class_tree(tmp_path, {"D/CD": 1, "D/UD": 0, "W/CW": 1}, n_per_folder=2)
    (root / "W" / "UW").mkdir()
    report = check_dataset(read_dataset(root))
    assert _kinds(report) == {"empty_folder": {"UW"}}


def test_segmentation_pairing_problems(tmp_path: Path):
    root = make_seg_set(tmp_path, n=3)
    write_image(root / "images" / "lonely.jpg", seed=9)
    write_mask(root / "masks" / "ghost.png", stripe_mask())
    write_mask(root / "masks" / "001.png", stripe_mask((30, 48)))  # overwrite: wrong height
    report = check_dataset(read_dataset(root))
    assert _kinds(report) == {"missing_mask": {"lonely.jpg"}, "orphan_mask": {"ghost.png"},
                              "size_mismatch": {"001.png"}}
    mismatch = next(p for p in report.problems if p.kind == "size_mismatch")
    assert "48x30" in mismatch.detail and "48x40" in mismatch.detail


def test_exact_duplicates_bytes_and_pixels(tmp_path: Path):
    root = _classes(tmp_path)
    shutil.copy(root / "Positive" / "000.jpg", root / "Positive" / "copy.jpg")
    pixels = np.asarray(Image.open(root / "Negative" / "000.jpg"))
    write_image(root / "Negative" / "same_pixels.png", pixels)  # other bytes, same pixels
    report = check_dataset(read_dataset(root))
    assert _kinds(report) == {"duplicate": {"copy.jpg", "same_pixels.png"}}
    keys = report.content_keys
    assert keys[str(root / "Positive" / "copy.jpg")] == keys[str(root / "Positive" / "000.jpg")]
    assert keys[str(root / "Negative" / "same_pixels.png")] == \
        keys[str(root / "Negative" / "000.jpg")]
    assert len(set(keys.values())) == 6


def test_duplicate_with_other_label_is_a_conflict(tmp_path: Path):
    root = _classes(tmp_path)
    shutil.copy(root / "Positive" / "000.jpg", root / "Negative" / "copy.jpg")
    report = check_dataset(read_dataset(root))
    assert _kinds(report) == {"label_conflict": {"000.jpg", "copy.jpg"}}


@pytest.mark.parametrize("mode,suffix,note", [
    ("L", ".png", "grayscale"), ("RGBA", ".png", "RGBA"), ("CMYK", ".jpg", "CMYK"),
    ("P", ".png", "palette"), ("I;16", ".png", "16-bit"), ("L", ".bmp", "grayscale"),
])
def test_unusual_modes_are_converted_not_rejected(tmp_path: Path, mode, suffix, note):
    root = _classes(tmp_path)
    path = root / "Positive" / f"odd{suffix}"
    if mode == "I;16":
        wide = (np.arange(40 * 48).reshape(40, 48) * 30).astype(np.uint16)
        Image.fromarray(wide).save(path)
    else:
        write_image(path, seed=11, mode=mode)
    desc = read_dataset(root)
    report = check_dataset(desc)
    assert report.ok
    assert [(p.kind, Path(p.path).name) for p in report.problems] == [("converted", path.name)]
    assert note in report.problems[0].detail
    assert len(apply_check(desc, report, skip_bad=False).samples) == 7


def test_stop_with_one_clear_report(tmp_path: Path):
    root = _classes(tmp_path)
    data = (root / "Positive" / "000.jpg").read_bytes()
    (root / "Positive" / "cut.jpg").write_bytes(data[:300])
    (root / "Negative" / "readme.txt").write_text("x")
    shutil.copy(root / "Negative" / "001.jpg", root / "Negative" / "dup.jpg")
    desc = read_dataset(root)
    report = check_dataset(desc)
    with pytest.raises(DataProblemsError) as error:
        apply_check(desc, report, skip_bad=False)
    text = str(error.value)
    assert error.value.report is report
    for expected in ("3 blocking", "cut.jpg", "readme.txt", "dup.jpg", "unreadable",
                     "not_image", "duplicate", "--skip-bad"):
        assert expected in text
    assert isinstance(error.value, ValueError)


def test_skip_bad_leaves_bad_files_out(tmp_path: Path):
    root = make_seg_set(tmp_path, n=4)
    write_mask(root / "masks" / "002.png", stripe_mask((30, 48)))  # size mismatch
    data = (root / "images" / "003.jpg").read_bytes()
    (root / "images" / "003.jpg").write_bytes(data[:200])  # truncated
    write_image(root / "images" / "lonely.jpg", seed=3)  # no mask (never a sample)
    desc = read_dataset(root)
    report = check_dataset(desc)
    kept = apply_check(desc, report, skip_bad=True)
    assert sorted(Path(s.image).name for s in kept.samples) == ["000.jpg", "001.jpg"]
    assert kept.problems == report.problems
    saved = json.loads(report.save(tmp_path / "run" / "data_check.json").read_text())
    assert saved["counts"] == {"unreadable": 1, "missing_mask": 1, "size_mismatch": 1}
    assert saved["ok"] is False


def test_skip_bad_keeps_one_copy_of_duplicates(tmp_path: Path):
    root = _classes(tmp_path)
    shutil.copy(root / "Positive" / "000.jpg", root / "Positive" / "zzz.jpg")
    desc = read_dataset(root)
    kept = apply_check(desc, check_dataset(desc), skip_bad=True)
    names = [Path(s.image).name for s in kept.samples if s.label == 1]
    assert names == ["000.jpg", "001.jpg", "002.jpg"]


def test_second_decoder_failure_is_unreadable(tmp_path: Path):
    """Some corrupt JPEGs decode in Pillow but not in TensorFlow: a second decoder catches them."""
    from fisuras.data.check import scan_file

    path = write_image(tmp_path / "a.jpg", seed=1)

    def picky(data: bytes):
        raise ValueError("{{function_node x}} jpeg::Uncompress failed. [Op:DecodeImage]")

    problem = scan_file(str(path), second_decoder=picky).problem
    assert problem.kind == "unreadable"
    assert problem.detail == "TensorFlow cannot decode it: jpeg::Uncompress failed."
    assert scan_file(str(path), second_decoder=lambda data: None).problem is None


def test_verify_with_tensorflow(tmp_path: Path):
    root = _classes(tmp_path)
    write_image(root / "Positive" / "cmyk.jpg", seed=5, mode="CMYK")
    data = (root / "Negative" / "000.jpg").read_bytes()
    (root / "Negative" / "cut.jpg").write_bytes(data[: len(data) // 2])
    report = check_dataset(read_dataset(root), verify_with_tensorflow=True)
    assert _kinds(report) == {"unreadable": {"cut.jpg"}, "converted": {"cmyk.jpg"}}


# --- issue 14: EXIF orientation, mask values, what --skip-bad left out ----------------------

def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save_turned(source: Path, target: Path, orientation: int = 6) -> Path:
    """Store ``source`` the way a phone does: pixels turned, EXIF saying how to stand it up."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as photo:
        # orientation 6 = upright after a 90° clockwise turn, so store it 90° anticlockwise
        stored = photo.transpose(Image.Transpose.ROTATE_90)
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored.save(target, exif=exif, quality=95)
    return target


def test_an_exif_rotated_photo_is_named_in_a_note(tmp_path: Path):
    root = _classes(tmp_path)
    _save_turned(root / "Positive" / "000.jpg", root / "Positive" / "phone.jpg")
    desc = read_dataset(root)
    report = check_dataset(desc)
    assert report.ok  # a note: the photo is used
    assert _kinds(report) == {"exif_rotated": {"phone.jpg"}}
    detail = report.problems[0].detail
    assert detail.startswith("EXIF orientation 6: stored turned a quarter")
    assert "training and evaluate read the pixels as stored" in detail
    assert "predict turns the photo upright" in detail
    assert "exif_rotated" in report.to_text() and "0 blocking problem(s), 1 note(s)" in \
        report.to_text()
    assert len(apply_check(desc, report, skip_bad=False).samples) == 7


def test_a_size_mismatch_the_exif_turn_explains_says_so(shared_data: Path, tmp_path: Path):
    # A real CFD photo (480x320) stored turned (320x480) with orientation 6; the mask was drawn
    # on the upright photo, so it is 480x320.
    root = tmp_path / "cfd"
    for stem in ("001", "003"):
        write_image(root / "images" / f"{stem}.jpg",
                    np.asarray(Image.open(shared_data / "seg_cfd" / "images" / f"{stem}.jpg")))
        shutil.copy(shared_data / "seg_cfd" / "masks" / f"{stem}.png", _mkdir(root / "masks"))
    _save_turned(shared_data / "seg_cfd" / "images" / "001.jpg", root / "images" / "001.jpg")
    report = check_dataset(read_dataset(root))
    assert _kinds(report) == {"exif_rotated": {"001.jpg"}, "size_mismatch": {"001.png"}}
    mismatch = next(p for p in report.problems if p.kind == "size_mismatch")
    assert mismatch.detail.startswith("mask 480x320 but image 001.jpg is 320x480 as stored; "
                                      "its EXIF orientation 6 turns it to 480x320 upright")
    assert not report.ok  # still a mismatch for training, which reads pixels as stored


def test_a_plain_size_mismatch_does_not_mention_exif(tmp_path: Path):
    root = make_seg_set(tmp_path, n=2, size=(40, 48))
    write_mask(root / "masks" / "001.png", stripe_mask((48, 40)))  # turned, but no EXIF
    mismatch = next(p for p in check_dataset(read_dataset(root)).problems
                    if p.kind == "size_mismatch")
    assert mismatch.detail == "mask 40x48 but image 001.jpg is 48x40"


def test_masks_with_values_other_than_0_and_255_get_a_note(shared_data: Path, tmp_path: Path):
    root = tmp_path / "seg"
    for stem in ("001", "003", "004"):
        shutil.copy(shared_data / "seg_cfd" / "images" / f"{stem}.jpg", _mkdir(root / "images"))
    masks = _mkdir(root / "masks")
    real = np.asarray(Image.open(shared_data / "seg_cfd" / "masks" / "001.png"))
    Image.fromarray(real).save(masks / "001.jpg", quality=75)  # JPEG noise around the cracks
    shutil.copy(shared_data / "seg_cfd" / "masks" / "003.png", masks)  # 0/255: no note
    write_mask(masks / "004.png", np.asarray(Image.open(shared_data / "seg_cfd" / "masks" /
                                                        "004.png")) > 0, on=1)  # 0/1: no note
    report = check_dataset(read_dataset(root))
    assert report.ok
    assert _kinds(report) == {"mask_values": {"001.jpg"}}
    detail = report.problems[0].detail
    n_other = int(np.count_nonzero(~np.isin(np.asarray(Image.open(masks / "001.jpg")),
                                            (0, 255))))
    assert detail.startswith(f"{n_other:,} pixel(s) (")
    assert "value(s) other than 0 and 255" in detail and "> 127 = crack" in detail


def test_skipped_line_counts_the_files_skip_bad_left_out(tmp_path: Path):
    root = make_seg_set(tmp_path / "data", n=4)
    write_mask(root / "masks" / "002.png", stripe_mask((30, 48)))  # size mismatch
    (root / "images" / "003.jpg").write_bytes(b"not a jpeg")  # not an image
    write_image(root / "images" / "lonely.jpg", seed=3)  # no mask
    write_image(root / "images" / "gray.png", seed=4, mode="L")  # a note: used, not left out
    write_mask(root / "masks" / "gray.png", stripe_mask())
    desc = read_dataset(root)
    report = check_dataset(desc)
    kept = apply_check(desc, report, skip_bad=True)
    assert len(kept.samples) == 3  # 000, 001, gray
    assert report.skipped_line(tmp_path / "run" / "data_report.json") == (
        f"left out 3 bad file(s) (--skip-bad); list in {tmp_path / 'run' / 'data_report.json'}")
    clean = check_dataset(read_dataset(make_seg_set(tmp_path / "clean", n=2)))
    assert clean.skipped_line("x.json") is None
