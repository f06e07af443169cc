"""The no-learning floor on synthetic cracks whose answer is known by hand, and its summary row."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fisuras.config import Settings
from fisuras.data.dataset import Sample
from fisuras.evaluate.floor import (
    DISK_RADIUS,
    FLOOR_LABEL,
    FLOOR_NAME,
    FLOOR_THRESHOLD,
    crack_filter,
    evaluate_floor,
)
from fisuras.evaluate.segmentation import POOLED, SegmentationEvaluator
from fisuras.evaluate.summary import summary_lines

GREY, DARK = 160, 60  # concrete-like background and a crack 100 grey levels darker


def photo(size: int = 64, value: int = GREY) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def dark_rows(rows: slice, size: int = 64, value: int = DARK) -> tuple[np.ndarray, np.ndarray]:
    """A uniform photo crossed by a horizontal dark band, and the band's mask."""
    image, mask = photo(size), np.zeros((size, size), bool)
    image[rows], mask[rows] = value, True
    return image, mask


def save_sample(tmp_path, name: str, image: np.ndarray, mask: np.ndarray, group: str) -> Sample:
    image_path, mask_path = tmp_path / f"{name}.png", tmp_path / f"{name}_mask.png"
    Image.fromarray(image).save(image_path)
    Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
    return Sample(image=str(image_path), label=int(mask.any()), mask=str(mask_path), group=group)


# --- the filter -------------------------------------------------------------------------------


def test_a_dark_line_scores_one_on_its_pixels_and_zero_elsewhere():
    image, line = dark_rows(slice(30, 33))  # 3 px wide, across the whole photo

    score = crack_filter(image)

    # The closing fills the line with the background (the disk never fits inside 3 px), so the
    # top-hat is 100 grey levels on the line and 0 off it; the line is its own robust maximum.
    assert score.dtype == np.float32 and score.shape == (64, 64)
    assert np.array_equal(score[line], np.ones(line.sum(), np.float32))
    assert np.array_equal(score[~line], np.zeros((~line).sum(), np.float32))
    assert np.array_equal(score >= FLOOR_THRESHOLD, line)


def test_a_blank_photo_and_a_bright_line_give_no_response():
    bright, _ = dark_rows(slice(30, 33), value=250)  # a bright line is not a crack

    assert not crack_filter(photo()).any()
    assert not crack_filter(bright).any()


def test_the_widest_crack_is_found_whole_and_a_wider_dark_region_is_not_a_crack():
    widest, widest_mask = dark_rows(slice(40, 58), size=96)  # 18 px: widest expected crack
    band, _ = dark_rows(slice(30, 60), size=96)  # 30 px: the 21 px disk fits inside

    assert 2 * DISK_RADIUS + 1 > 18
    assert np.array_equal(crack_filter(widest) >= FLOOR_THRESHOLD, widest_mask)
    assert not crack_filter(band).any()


def test_faint_noise_stays_below_the_threshold():
    rng = np.random.default_rng(0)
    noisy = np.clip(photo().astype(int) + rng.integers(-2, 3, (64, 64, 1)), 0, 255)

    # At most 4 grey levels darker than any neighbour, under the 10-level minimum contrast.
    assert crack_filter(noisy.astype(np.uint8)).max() <= 4 / 10 + 1e-6


def test_the_filter_rejects_a_grey_array():
    with pytest.raises(ValueError, match="RGB"):
        crack_filter(np.zeros((8, 8), np.uint8))


# --- the floor through the evaluator ----------------------------------------------------------


def test_the_floor_recovers_a_line_exactly_under_the_models_protocol(tmp_path):
    image, line = dark_rows(slice(30, 33))
    samples = [save_sample(tmp_path, "line", image, line, "lines")]

    figures = evaluate_floor(samples, Settings())["lines"]

    for key in ("iou", "dice", "pixel_f1", "tolerance_f1", "ods", "ois", "ap"):
        assert figures[key] == pytest.approx(1.0), key
    assert figures["n_images"] == 1


def test_a_one_pixel_shift_halves_iou_but_not_the_tolerance_f1(tmp_path):
    image, _ = dark_rows(slice(30, 33))
    _, shifted = dark_rows(slice(31, 34))  # the annotator drew the line 1 px lower
    samples = [save_sample(tmp_path, "shifted", image, shifted, "lines")]

    figures = evaluate_floor(samples, Settings())["lines"]

    # Predicted rows 30-32, true rows 31-33: 2 rows shared out of 4 -> IoU 0.5, Dice 2/3. The
    # skeletons (rows 31 and 32) are 1 px apart, within the 2 px tolerance: tolerance F1 1.
    assert figures["iou"] == pytest.approx(0.5)
    assert figures["dice"] == pytest.approx(2 / 3)
    assert figures["tolerance_f1"] == pytest.approx(1.0)
    assert figures["ods"] == pytest.approx(1.0)


def test_evaluate_floor_reports_per_group_with_the_evaluators_keys(tmp_path):
    horizontal, horizontal_mask = dark_rows(slice(30, 33))
    vertical, vertical_mask = horizontal.transpose(1, 0, 2), horizontal_mask.T
    samples = [
        save_sample(tmp_path, "h", horizontal, horizontal_mask, "lines"),
        save_sample(tmp_path, "v", vertical, vertical_mask, "lines"),
        save_sample(tmp_path, "blank", photo(), np.zeros((64, 64), bool), "blank"),
    ]

    result = evaluate_floor(samples, Settings(tolerance_px=3))

    reference = SegmentationEvaluator()
    reference.add(horizontal_mask * 0.9, horizontal_mask, group="any")
    assert set(result) == {"blank", "lines", POOLED}
    for figures in result.values():
        assert set(figures) - {"pooled_across_groups"} == set(reference.result()["any"])
        assert figures["protocol"]["tolerance_px"] == 3
        assert figures["protocol"]["fixed_threshold"] == FLOOR_THRESHOLD
    assert result["lines"]["n_images"] == 2 and result["lines"]["ods"] == pytest.approx(1.0)
    # The blank photo: no crack, no false alarm (its figures are 0/0, reported as 0).
    blank = result["blank"]
    assert blank["images_without_crack"] == 1
    assert blank["images_without_crack_with_false_alarm"] == 0
    assert result[POOLED]["iou"] == pytest.approx(1.0)


# --- the summary ------------------------------------------------------------------------------


def test_the_floor_row_and_verdict_appear_beside_the_model_row():
    model = {"n_images": 7, "iou": 0.5, "dice": 0.6, "tolerance_f1": 0.7, "ods": 0.73,
             "ois": 0.75, "ap": 0.6}
    floor = {**model, "iou": 0.1, "ods": 0.5}
    metrics = {"threshold": 0.4, "test": {"seg_cfd": model},
               "floor": {"method": FLOOR_NAME, "label": FLOOR_LABEL,
                         "figures": {"seg_cfd": floor}}}

    lines = summary_lines(metrics)

    assert lines[:2] == ["threshold 0.400", "seg_cfd"]
    assert lines[2].split()[0] == "model" and "ods=0.730" in lines[2]
    assert lines[3].startswith("  floor (black top-hat, no learning)") and "ods=0.500" in lines[3]
    assert lines[2].index("n_images=") == lines[3].index("n_images=")  # aligned columns
    assert lines[4] == "  learning adds +0.230 ODS over the floor"


def test_a_model_no_better_than_the_floor_is_called_so_and_no_floor_keeps_one_line():
    model = {"n_images": 3, "iou": 0.2, "ods": 0.4}
    metrics = {"test": {"cfd": model}, "floor": {"figures": {"cfd": {**model, "ods": 0.45}}}}

    assert summary_lines(metrics)[-1] == (
        "  learning adds -0.050 ODS over the floor: learning did not pay"
    )
    without_floor = summary_lines({"test": {"cfd": model}})
    assert without_floor == ["cfd        n_images=3  iou=0.200  ods=0.400"]
