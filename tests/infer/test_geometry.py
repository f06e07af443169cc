"""Crack geometry on synthetic cracks of known size, and a sanity check on real CFD masks."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.draw import polygon
from skimage.measure import label, regionprops

from fisuras.data.images import MaskError
from fisuras.infer import geometry
from fisuras.infer.geometry import (
    NO_SCALE_NOTE,
    CrackMaskError,
    crack_distances,
    measure_cracks,
    orientation_degrees,
)


def rotated_crack(length: float, width: float, degrees: float, size: int = 160) -> np.ndarray:
    """A straight crack (filled rectangle) centred in the image, ``degrees`` counter-clockwise."""
    angle = np.deg2rad(degrees)
    centre = size / 2
    along = np.array([np.cos(angle), -np.sin(angle)])  # (x, y) with y pointing down
    across = np.array([np.sin(angle), np.cos(angle)])
    corners = np.array(
        [
            centre + s1 * length / 2 * along + s2 * width / 2 * across
            for s1, s2 in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
    )
    mask = np.zeros((size, size), bool)
    rows, cols = polygon(corners[:, 1], corners[:, 0], mask.shape)
    mask[rows, cols] = True
    return mask


def test_straight_horizontal_crack_of_known_size():
    mask = np.zeros((40, 140), bool)
    mask[17:23, 20:120] = True  # 100 px long, 6 px wide
    report = measure_cracks(mask)
    (crack,) = report.cracks
    assert crack.length_px == pytest.approx(100, rel=0.10)
    assert crack.mean_width_px == pytest.approx(6, rel=0.10)
    assert crack.max_width_px == pytest.approx(6, rel=0.10)
    assert crack.orientation_deg == pytest.approx(0.0, abs=1.0)
    assert crack.area_px == 600
    assert crack.bbox == (17, 20, 23, 120)
    assert crack.centroid == pytest.approx((19.5, 69.5))


@pytest.mark.parametrize("degrees", [45.0, 135.0])
def test_diagonal_crack_of_known_size(degrees):
    report = measure_cracks(rotated_crack(length=120, width=8, degrees=degrees))
    (crack,) = report.cracks
    assert crack.length_px == pytest.approx(120, rel=0.10)
    assert crack.mean_width_px == pytest.approx(8, rel=0.10)
    assert crack.max_width_px == pytest.approx(8, rel=0.10)
    assert crack.orientation_deg == pytest.approx(degrees, abs=1.0)


def test_vertical_crack_orientation_is_ninety():
    mask = np.zeros((100, 30), bool)
    mask[10:90, 14:17] = True
    (crack,) = measure_cracks(mask).cracks
    assert crack.orientation_deg == pytest.approx(90.0, abs=1.0)
    assert crack.length_px == pytest.approx(80, rel=0.10)
    assert crack.max_width_px == pytest.approx(3, abs=1.0)


@pytest.mark.parametrize("degrees", [0, 15, 30, 60, 75])
@pytest.mark.parametrize("width", [2, 5, 9])
def test_max_width_is_never_under_read(degrees, width):
    """The documented bound: max width within 0 to +1.5 px of the drawn width (area / length)."""
    mask = rotated_crack(length=100, width=width, degrees=degrees)
    drawn_width = mask.sum() / 100  # polygon rasterisation may add a boundary row
    (crack,) = measure_cracks(mask).cracks
    assert -0.5 <= crack.max_width_px - drawn_width <= 1.5
    assert crack.length_px == pytest.approx(100, rel=0.12)


def test_mm_scaling_multiplies_lengths_and_squares_areas():
    mask = rotated_crack(length=100, width=6, degrees=30)
    in_px = measure_cracks(mask).cracks[0]
    scale = 0.05
    in_mm = measure_cracks(mask, mm_per_px=scale).cracks[0]
    assert in_mm.length_px == in_px.length_px  # pixel values unchanged
    assert in_mm.length_mm == pytest.approx(in_px.length_px * scale)
    assert in_mm.mean_width_mm == pytest.approx(in_px.mean_width_px * scale)
    assert in_mm.max_width_mm == pytest.approx(in_px.max_width_px * scale)
    assert in_mm.area_mm2 == pytest.approx(in_px.area_px * scale**2)
    assert in_px.length_mm is None and in_px.area_mm2 is None


def test_wide_flag_needs_a_scale_and_follows_the_limit():
    mask = np.zeros((40, 140), bool)
    mask[17:23, 20:120] = True  # 6 px wide
    assert measure_cracks(mask, mm_per_px=0.1).cracks[0].wide is True  # 0.6 mm > 0.3
    assert measure_cracks(mask, mm_per_px=0.04).cracks[0].wide is False  # 0.24 mm
    assert measure_cracks(mask, mm_per_px=0.04, max_width_mm=0.2).cracks[0].wide is True
    unscaled = measure_cracks(mask)
    assert unscaled.cracks[0].wide is None
    assert unscaled.notes == [NO_SCALE_NOTE]
    assert unscaled.totals()["wide_count"] is None


def test_several_cracks_totals_and_speck_filtering():
    mask = np.zeros((60, 120), bool)
    mask[10:13, 10:110] = True  # crack 1: 100 x 3
    mask[30:80, 50:54] = True  # crack 2: 30 x 4 (clipped by the image edge)
    mask[50:52, 5:8] = True  # a 6 px speck
    report = measure_cracks(mask, mm_per_px=0.1, min_area_px=10)
    assert len(report.cracks) == 2
    totals = report.totals()
    assert totals["count"] == 2
    assert totals["total_length_px"] == pytest.approx(sum(c.length_px for c in report.cracks))
    assert totals["max_width_px"] == max(c.max_width_px for c in report.cracks)
    assert totals["total_area_px"] == 300 + 120
    assert totals["total_area_mm2"] == pytest.approx(420 * 0.01)
    assert totals["wide_count"] == 2
    assert len(measure_cracks(mask, min_area_px=1).cracks) == 3


def test_empty_mask_gives_an_empty_report():
    report = measure_cracks(np.zeros((20, 20), bool), mm_per_px=0.1)
    assert report.cracks == []
    assert report.totals()["count"] == 0 and report.totals()["max_width_px"] == 0.0


def test_report_serialises_to_json_and_flat_rows():
    mask = rotated_crack(length=60, width=4, degrees=20, size=96)
    report = measure_cracks(mask, mm_per_px=0.2)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["settings"]["mm_per_px"] == 0.2
    assert data["totals"]["count"] == 1
    assert len(data["cracks"][0]["bbox"]) == 4
    (row,) = report.rows()
    assert {"bbox_min_row", "bbox_max_col", "centroid_row", "length_mm", "wide"} <= set(row)
    assert all(not isinstance(value, list | tuple | dict) for value in row.values())


@pytest.mark.parametrize(
    ("mask", "kwargs", "error", "message"),
    [
        (np.full((4, 4), 255, np.uint8), {}, MaskError, "crack mask must be boolean.*0/255"),
        (np.zeros((2, 4, 4), bool), {}, MaskError, "crack mask must be 2-D"),
        (np.zeros((4, 4), bool), {"mm_per_px": 0.0}, CrackMaskError, "mm_per_px"),
        (np.zeros((4, 4), bool), {"max_width_mm": -1.0}, CrackMaskError, "max_width_mm"),
    ],
)
def test_bad_input_is_refused(mask, kwargs, error, message):
    with pytest.raises(error, match=message):  # the mask check is data.images.as_mask
        measure_cracks(mask, **kwargs)


def test_real_cfd_cracks_have_the_documented_thin_widths(shared_data):
    """The data README: CFD cracks are thin, area / skeleton length has a median of 3.4 px."""
    paths = sorted((shared_data / "seg_cfd" / "masks").glob("*.png"))[:3]
    widths = []
    for path in paths:
        mask = np.array(Image.open(path)) > 127
        report = measure_cracks(mask)
        assert report.totals()["count"] >= 1
        assert report.totals()["total_area_px"] <= mask.sum()
        widths += [crack.mean_width_px for crack in report.cracks]
    assert 2.0 <= float(np.median(widths)) <= 6.0


# --- widths without a full-size float64 distance map (issue 14: 8000 x 8000 photos) -----------

def distance_cases() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    specks = ndimage.binary_dilation(rng.random((1100, 300)) > 0.98, iterations=2)
    blob = np.zeros((1300, 400), bool)
    blob[100:1200, 40:390] = True  # 350 px wide: past the 64-row margin, measured again wider
    tall = np.ones((1200, 60), bool)
    tall[-1, -1] = False  # one background pixel, over 1000 rows from most crack pixels
    return [specks, blob, tall, np.ones((40, 40), bool), np.zeros((30, 30), bool)]


@pytest.mark.parametrize("case", range(5))
def test_crack_distances_equal_scipys_full_transform(case, monkeypatch):
    mask = distance_cases()[case]
    expected = ndimage.distance_transform_edt(mask)[mask]
    np.testing.assert_array_equal(crack_distances(mask), expected)
    monkeypatch.setattr(geometry, "DISTANCE_BAND_ROWS", 7)
    monkeypatch.setattr(geometry, "DISTANCE_MARGIN_ROWS", 1)
    np.testing.assert_array_equal(crack_distances(mask), expected)


def peak_bytes(call) -> tuple[object, int]:
    """``call()``'s result and the peak bytes NumPy allocated meanwhile (via tracemalloc)."""
    tracemalloc.start()
    try:
        return call(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_measuring_a_crack_across_a_large_photo_needs_no_full_size_float64_maps():
    mask = np.zeros((2000, 2000), bool)
    rows = np.arange(2000)
    for offset in range(4):  # a 4 px diagonal crack across the whole photo
        mask[rows[offset:], rows[: 2000 - offset]] = True
    distances, peak = peak_bytes(lambda: crack_distances(mask))
    assert distances.size == mask.sum()
    assert peak < 20 * mask.size  # scipy on the whole mask: about 33 bytes a pixel
    report, peak = peak_bytes(lambda: measure_cracks(mask))
    assert peak < 30 * mask.size  # before: 40 (that transform, and regionprops' float64 box)
    (crack,) = report.cracks
    assert crack.orientation_deg == pytest.approx(135.0) and crack.max_width_px >= 2


def test_orientation_follows_regionprops_rule_ties_included():
    rng = np.random.default_rng(5)
    shapes = [ndimage.binary_dilation(rng.random((60, 80)) > 0.97) for _ in range(20)]
    square, cross = np.zeros((9, 9), bool), np.zeros((9, 9), bool)
    square[2:6, 2:6] = True  # mu20 == mu02: regionprops' tie rule
    cross[4, 1:8] = cross[1:8, 4] = True
    compared = 0
    for mask in [*shapes, square, cross]:
        for region in regionprops(label(mask, connectivity=2)):
            expected = float(np.degrees(region.orientation) + 90.0) % 180.0
            assert orientation_degrees(region.coords) == pytest.approx(expected, abs=1e-9)
            compared += 1
    assert compared > 100
