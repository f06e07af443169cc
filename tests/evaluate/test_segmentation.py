"""Segmentation metrics on hand-made masks where the right answer can be reasoned out."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from fisuras.data.images import MaskError
from fisuras.evaluate.checks import EvaluationInputError
from fisuras.evaluate.segmentation import (
    POOLED,
    SegmentationEvaluator,
    error_overlay,
    iou_dice_from_counts,
    pixel_counts,
    tolerance_counts,
)
from fisuras.evaluate.tolerance import disc_offsets, maximum_matching_size


def horizontal_line(row: int, width: int = 1, shape=(40, 64), cols=(8, 56)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[row : row + width, cols[0] : cols[1]] = True
    return mask


def tolerance_f1(counts: dict) -> float:
    precision = counts["matched_pred"] / counts["n_pred"] if counts["n_pred"] else 0.0
    recall = counts["matched_true"] / counts["n_true"] if counts["n_true"] else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


# --- pixel metrics ---------------------------------------------------------------------------


def test_pixel_counts_and_ratios_by_hand():
    pred = np.array([[1, 1, 1, 0], [0, 0, 1, 0]])
    true = np.array([[1, 1, 0, 0], [0, 1, 1, 0]])
    # TP (0,0) (0,1) (1,2); FP (0,2); FN (1,1); TN the other 3.
    counts = pixel_counts(pred, true)
    assert counts == {"tp": 3, "fp": 1, "fn": 1, "tn": 3}
    scores = iou_dice_from_counts(counts)
    assert scores["iou"] == pytest.approx(3 / 5)
    assert scores["dice"] == pytest.approx(6 / 8)
    assert scores["f1"] == scores["dice"]
    assert (scores["precision"], scores["recall"]) == pytest.approx((0.75, 0.75))


def test_pixel_counts_refuse_mismatched_or_255_masks():
    with pytest.raises(EvaluationInputError, match="shape"):
        pixel_counts(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(MaskError, match="0/255"):
        pixel_counts(np.full((2, 2), 255, np.uint8), np.zeros((2, 2), bool))


# --- tolerance matching ----------------------------------------------------------------------


def test_perfect_prediction_scores_one():
    true = horizontal_line(20, width=3)
    assert tolerance_f1(tolerance_counts(true, true)) == 1.0
    assert iou_dice_from_counts(pixel_counts(true, true))["iou"] == 1.0


def test_one_pixel_shift_is_forgiven_by_tolerance_but_not_by_iou():
    true = horizontal_line(20, width=3)
    shifted = horizontal_line(21, width=3)
    assert tolerance_f1(tolerance_counts(shifted, true, tolerance_px=2)) == 1.0
    assert iou_dice_from_counts(pixel_counts(shifted, true))["iou"] == pytest.approx(2 / 4)


def test_three_pixel_shift_of_a_thin_line_is_missed_at_tolerance_two():
    true = horizontal_line(20)
    counts = tolerance_counts(horizontal_line(23), true, tolerance_px=2)
    assert counts["matched_pred"] == 0 and tolerance_f1(counts) == 0.0
    assert tolerance_f1(tolerance_counts(horizontal_line(23), true, tolerance_px=3)) == 1.0


def test_tolerance_radius_is_inclusive_and_euclidean():
    true = np.zeros((9, 9), bool)
    true[4, 4] = True
    at_two = np.zeros_like(true)
    at_two[4, 6] = True  # distance exactly 2
    diagonal = np.zeros_like(true)
    diagonal[6, 6] = True  # distance 2.83 > 2, though within a 5x5 square
    assert tolerance_counts(at_two, true, tolerance_px=2)["matched_pred"] == 1
    assert tolerance_counts(diagonal, true, tolerance_px=2)["matched_pred"] == 0
    assert len(disc_offsets(2)) == 13


def test_empty_prediction_and_empty_truth_follow_the_zero_rule():
    true = horizontal_line(20)
    empty = np.zeros_like(true)
    no_prediction = tolerance_counts(empty, true)
    assert no_prediction["n_pred"] == 0 and no_prediction["matched_true"] == 0
    assert tolerance_f1(no_prediction) == 0.0  # recall 0, precision 0/0 -> 0
    false_alarm = tolerance_counts(true, empty)
    assert false_alarm["n_true"] == 0 and false_alarm["n_pred"] > 0
    assert tolerance_f1(false_alarm) == 0.0
    assert iou_dice_from_counts(pixel_counts(empty, empty)) == {
        "iou": 0.0,
        "dice": 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }


def test_two_predicted_pixels_near_one_true_pixel_count_once():
    true = np.zeros((9, 9), bool)
    true[4, 4] = True
    pred = np.zeros_like(true)
    pred[4, 2] = pred[4, 6] = True
    counts = tolerance_counts(pred, true, tolerance_px=2)
    assert counts == {"matched_pred": 1, "n_pred": 2, "matched_true": 1, "n_true": 1}


def test_matching_is_maximum_not_greedy():
    # True A=(4,4), B=(4,7). Predicted p=(4,5) reaches A and B, q=(4,2) reaches only A.
    # Greedy nearest-first pairs p-A and leaves q alone; the maximum matching is p-B, q-A.
    true = np.zeros((9, 12), bool)
    true[4, 4] = true[4, 7] = True
    pred = np.zeros_like(true)
    pred[4, 5] = pred[4, 2] = True
    assert tolerance_counts(pred, true, tolerance_px=2)["matched_pred"] == 2


def test_matching_size_agrees_with_an_assignment_solver():
    rng = np.random.default_rng(3)
    for _ in range(30):
        n_left, n_right = rng.integers(1, 25, size=2)
        allowed = rng.random((n_left, n_right)) < rng.uniform(0.05, 0.4)
        left, right = np.nonzero(allowed)
        rows, cols = linear_sum_assignment(-allowed.astype(float))  # maximise allowed pairs
        assert maximum_matching_size(left, right) == int(allowed[rows, cols].sum())


def test_matching_on_a_real_crack_shifted_by_one_pixel_is_exact_and_fast(shared_data):
    """The ladder graph that makes SciPy's Hopcroft-Karp take ~1 s (scipy#26147) on this crack."""
    mask = np.array(Image.open(sorted((shared_data / "seg_cfd" / "masks").glob("*.png"))[0])) > 127
    counts = tolerance_counts(np.roll(mask, 1, axis=1), mask, tolerance_px=2)
    assert counts["n_true"] > 300
    # Check the matched count independently on the candidate pairs (dense assignment).
    from fisuras.evaluate.tolerance import thin

    true_points = np.argwhere(thin(mask))
    pred_points = np.argwhere(thin(np.roll(mask, 1, axis=1)))
    distance = np.hypot(*(pred_points[:, None, :] - true_points[None, :, :]).transpose(2, 0, 1))
    allowed = distance <= 2
    rows, cols = linear_sum_assignment(-allowed.astype(float))
    assert counts["matched_pred"] == int(allowed[rows, cols].sum())


# --- the evaluator ---------------------------------------------------------------------------


def test_evaluator_on_truth_times_point_eight():
    true = horizontal_line(20, width=2)
    evaluator = SegmentationEvaluator(thresholds=99)
    evaluator.add(true * 0.8, true, group="g")
    result = evaluator.result()["g"]
    # Every threshold below 0.8 predicts exactly the truth; above it predicts nothing.
    assert result["ods"] == 1.0 and result["ois"] == 1.0 and result["ap"] == pytest.approx(1.0)
    assert result["ods_threshold"] < 0.8
    assert result["iou"] == 1.0 and result["tolerance_f1"] == 1.0  # fixed threshold 0.5
    curve = result["curve"]
    above = np.asarray(curve["thresholds"]) > 0.8
    assert np.all(np.asarray(curve["f1"])[above] == 0.0)
    assert np.all(np.asarray(curve["f1"])[~above] == 1.0)
    assert result["protocol"]["tolerance_px"] == 2 and result["protocol"]["thresholds"] == 99
    high = SegmentationEvaluator(fixed_threshold=0.9)
    high.add(true * 0.8, true)
    assert high.result()["all"]["tolerance_f1"] == 0.0 and high.result()["all"]["iou"] == 0.0


def test_ods_ois_ap_on_two_images_by_hand():
    # Image A: a 20 px true line found at 0.85, plus a separate 10 px false line at 0.35.
    # Image B: a 20 px true line found only at 0.25.
    shape = (30, 40)
    a_true = horizontal_line(5, shape=shape, cols=(10, 30))
    a_false = horizontal_line(20, shape=shape, cols=(10, 20))
    a_prob = a_true * 0.85 + a_false * 0.35
    b_true = horizontal_line(12, shape=shape, cols=(5, 25))
    evaluator = SegmentationEvaluator(thresholds=99)
    evaluator.add(a_prob, a_true, group="set", name="a")
    evaluator.add(b_true * 0.25, b_true, group="set", name="b")
    result = evaluator.result()["set"]
    # t <= .25: matched 40 of 50 predicted, 40 true -> P .8, R 1, F 8/9.
    # .25 < t <= .35: matched 20 of 30, R .5 -> F 4/7.   .35 < t <= .85: P 1, R .5 -> F 2/3.
    assert result["ods"] == pytest.approx(8 / 9)
    assert result["ods_threshold"] <= 0.25
    assert result["ois"] == pytest.approx(1.0)  # each image alone reaches F 1 somewhere
    # PR points (1, .8), (.5, 2/3), (.5, 1), (0, 0): envelope area .5 x 1 + .5 x .8.
    assert result["ap"] == pytest.approx(0.9)
    rows = {row["name"]: row for row in evaluator.per_image()}
    assert rows["b"]["best_f1"] == 1.0 and rows["b"]["best_threshold"] <= 0.25
    assert rows["b"]["tolerance_f1"] == 0.0  # nothing above the fixed 0.5


def test_groups_are_reported_apart_and_pooling_is_labelled():
    true = horizontal_line(20)
    evaluator = SegmentationEvaluator(thresholds=9)
    evaluator.add(true * 0.9, true, group="cfd")
    evaluator.add(np.zeros(true.shape), true, group="deepcrack")
    result = evaluator.result()
    assert set(result) == {"cfd", "deepcrack", POOLED}
    assert result["cfd"]["ods"] == 1.0 and result["deepcrack"]["ods"] == 0.0
    assert result[POOLED]["pooled_across_groups"] == ["cfd", "deepcrack"]
    assert result[POOLED]["n_images"] == 2
    assert result[POOLED]["ois"] == pytest.approx(0.5)
    single = SegmentationEvaluator(thresholds=9)
    single.add(true * 0.9, true)
    assert list(single.result()) == ["all"]
    with pytest.raises(EvaluationInputError, match="reserved"):
        single.add(true * 0.9, true, group=POOLED)


def test_crack_free_images_are_left_out_of_ois_but_counted_as_false_alarms():
    true = horizontal_line(20)
    clean = np.zeros_like(true)
    evaluator = SegmentationEvaluator(thresholds=9)
    evaluator.add(true * 0.9, true, name="cracked")
    evaluator.add(horizontal_line(5) * 0.95, clean, name="clean with alarm")
    evaluator.add(clean * 0.0, clean, name="clean")
    result = evaluator.result()["all"]
    assert result["ois"] == 1.0 and result["n_images_for_ois"] == 1
    assert result["images_without_crack"] == 2
    assert result["images_without_crack_with_false_alarm"] == 1
    # The false line is more confident than the crack: no threshold escapes it.
    assert result["ods"] == pytest.approx(2 / 3)  # P 1/2, R 1 at every t <= 0.9


def test_evaluator_keeps_no_probability_maps():
    true = horizontal_line(20)
    prob = true * 0.9
    alive = weakref.ref(prob)
    evaluator = SegmentationEvaluator(thresholds=5)
    evaluator.add(prob, true)
    del prob
    gc.collect()
    assert alive() is None
    assert evaluator.result()["all"]["n_images"] == 1


def test_evaluator_accepts_channel_axis_and_refuses_bad_maps():
    true = horizontal_line(20)
    evaluator = SegmentationEvaluator(thresholds=5)
    evaluator.add((true * 0.9)[..., None], true[..., None])
    assert evaluator.result()["all"]["ods"] == 1.0
    with pytest.raises(EvaluationInputError, match="logits"):
        evaluator.add(true * 4.0 - 2.0, true, name="x.png")
    with pytest.raises(EvaluationInputError, match="x.png"):
        evaluator.add(np.zeros((10, 10)), true, name="x.png")
    with pytest.raises(EvaluationInputError, match="no images"):
        SegmentationEvaluator().result()


def test_evaluator_on_real_cracks_rewards_a_close_prediction(shared_data):
    masks = sorted((shared_data / "seg_deepcrack" / "masks").glob("*.png"))[:2]
    evaluator = SegmentationEvaluator(thresholds=19)
    for path in masks:
        true = np.array(Image.open(path)) > 127
        # A blurred, one-pixel-shifted copy of the truth: a plausible good model output.
        prob = np.clip(ndimage.gaussian_filter(np.roll(true, 1, axis=0) * 1.0, 1.0) * 1.4, 0, 1)
        evaluator.add(prob, true, group="deepcrack", name=path.stem)
    result = evaluator.result()["deepcrack"]
    assert result["ods"] > 0.9 and result["ap"] > 0.85
    assert result["iou"] < result["ods"]  # the shift costs pixels, not tolerance matches


# --- overlay ---------------------------------------------------------------------------------


def test_error_overlay_colours_each_outcome_distinctly():
    image = np.full((1, 4, 3), 100, np.uint8)
    pred = np.array([[1, 1, 0, 0]], bool)
    true = np.array([[1, 0, 1, 0]], bool)
    out = error_overlay(image, pred, true, alpha=0.6)
    tp, fp, fn, tn = out[0]
    assert tp[1] > tp[0] and tp[1] > tp[2]  # green
    assert fp[0] > fp[1] and fp[0] > fp[2]  # red
    assert fn[2] > fn[0] and fn[2] > fn[1]  # blue
    assert tn.tolist() == [100, 100, 100]  # untouched
    assert image[0, 0].tolist() == [100, 100, 100]  # input not modified
    assert error_overlay(image[..., 0], pred, true).shape == (1, 4, 3)  # grey input
    with pytest.raises(EvaluationInputError, match="uint8"):
        error_overlay(image.astype(float), pred, true)


def test_sweep_thresholds_are_stored_as_short_decimals():
    # issue 14: linspace's 0.36000000000000004 reached the model card and metrics.json
    true, false_alarm = horizontal_line(10, width=2), horizontal_line(30, width=2)
    evaluator = SegmentationEvaluator(thresholds=99)
    evaluator.add(true * 0.365 + false_alarm * 0.355, true, group="g")  # best from 0.36 on
    result = evaluator.result()["g"]
    assert result["ods"] == 1.0 and repr(result["ods_threshold"]) == "0.36"
    swept = result["curve"]["thresholds"]
    assert [repr(t) for t in swept] == [repr(round(0.01 * k, 2)) for k in range(1, 100)]
    assert "0.36000000000000004" not in repr(swept)
    assert repr(SegmentationEvaluator(thresholds=7).thresholds[1]) == "np.float64(0.173333)"
