"""Crack segmentation metrics: pixel overlap, tolerance F, and ODS/OIS/AP over a threshold sweep.

Two families of numbers, both reported because readers of crack papers expect both:

* **Pixel metrics** (IoU, Dice, precision, recall, F1) at one fixed threshold: strict, every pixel
  of a 2 px crack counts, so a one-pixel shift halves them.
* **Tolerance metrics** (the BSDS boundary protocol, see :mod:`fisuras.evaluate.tolerance`):
  thinned prediction and truth matched one-to-one within ``tolerance_px``. Over the sweep
  ``np.linspace(0.01, 0.99, thresholds)`` (rounded to 6 decimals: 0.36, not 0.36000000000000004):

  - **ODS** (optimal dataset scale): sum matched/predicted/true counts over all images of a group
    at each threshold, compute F, take the best single threshold.
  - **OIS** (optimal image scale): each image's best F over the thresholds, averaged over images.
    Images without any true crack pixel are left out of OIS: their recall is 0/0, so their F is 0
    at every threshold and would punish even a perfect model. Their false alarms still count in
    IoU, ODS and AP, and ``images_without_crack_with_false_alarm`` reports them directly.
  - **AP**: area under the group's tolerance precision-recall curve. The sweep's (recall,
    precision) points are sorted by recall, precision is replaced by its envelope (the best
    precision at this or any higher recall, as in PASCAL VOC, because thinning makes the curve
    slightly non-monotonic), and the area is summed step-wise from recall 0.

A predicted pixel is crack when ``prob >= threshold``. 0/0 is 0.0 everywhere (no prediction:
precision 0; empty truth: recall 0, so F is 0 once anything is predicted).

Groups (e.g. datasets or surfaces) are never pooled silently: each gets its own entry, and with
more than one group an extra ``"all_groups_pooled"`` entry says in its name what it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fisuras.evaluate.checks import (
    EvaluationInputError,
    as_mask,
    as_probability_map,
    same_shape,
)
from fisuras.evaluate.overlay import error_overlay
from fisuras.evaluate.ratios import f_scores, ratio, ratios
from fisuras.evaluate.tolerance import MATCHING, THINNING, SkeletonMatcher, thin, tolerance_counts

__all__ = [
    "POOLED",
    "SegmentationEvaluator",
    "error_overlay",
    "iou_dice_from_counts",
    "pixel_counts",
    "tolerance_counts",
]

POOLED = "all_groups_pooled"
# Sweep thresholds are rounded to this many decimals, so a chosen one reads 0.36 in the model card
# and metrics, not linspace's 0.36000000000000004.
THRESHOLD_DECIMALS = 6


def pixel_counts(pred, true) -> dict[str, int]:
    """Confusion counts of two bool masks of the same shape: ``tp, fp, fn, tn``.

    Example:
        >>> import numpy as np
        >>> pixel_counts(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]]))
        {'tp': 1, 'fp': 1, 'fn': 1, 'tn': 1}
    """
    pred_mask, true_mask = as_mask(pred, "pred"), as_mask(true, "true")
    same_shape(pred_mask, true_mask)
    tp = int(np.count_nonzero(pred_mask & true_mask))
    fp = int(np.count_nonzero(pred_mask)) - tp
    fn = int(np.count_nonzero(true_mask)) - tp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(pred_mask.size) - tp - fp - fn}


def iou_dice_from_counts(counts: dict) -> dict[str, float]:
    """IoU, Dice, precision, recall and F1 (equal to Dice) from ``tp, fp, fn`` counts.

    Sum counts over images first for dataset-level numbers (what fisuras reports).

    Example:
        >>> iou_dice_from_counts({"tp": 6, "fp": 2, "fn": 4, "tn": 88})
        {'iou': 0.5, 'dice': 0.6666666666666666, 'precision': 0.75, 'recall': 0.6, \
'f1': 0.6666666666666666}
    """
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    dice = ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "iou": ratio(tp, tp + fp + fn),
        "dice": dice,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": dice,
    }


def _tolerance_prf(matched, n_pred, n_true) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    precision, recall = ratios(matched, n_pred), ratios(matched, n_true)
    return precision, recall, f_scores(precision, recall)


def _envelope_area(recall: np.ndarray, precision: np.ndarray) -> float:
    """Step-wise area under a PR curve whose precision is replaced by its upper envelope."""
    order = np.lexsort((-precision, recall))  # by recall, best precision first within a tie
    recall, precision = recall[order], precision[order]
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * envelope))


@dataclass
class _ImageCounts:
    """What the evaluator keeps per image: counts only, never the probability map."""

    name: str
    group: str
    matched: np.ndarray  # (T,) matched skeleton pixels at each sweep threshold
    n_pred: np.ndarray  # (T,) predicted skeleton pixels at each sweep threshold
    n_true: int  # true skeleton pixels
    pixel_fixed: dict  # tp/fp/fn/tn at the fixed threshold
    tolerance_fixed: tuple[int, int]  # (matched, n_pred) at the fixed threshold


class SegmentationEvaluator:
    """Accumulates per-image counts, then reports pixel and tolerance metrics per group.

    Memory: per image only two count vectors of length ``thresholds`` are kept, never the maps.
    Time: one thinning and one matching per threshold whose mask differs from the previous one;
    an untrained model's output, large blobs over much of the image, costs several times a good
    model's thin lines (thinning big blobs is the cost). Figures: BENCHMARKS.md, 'Evaluation and
    synthetic data'.

    Example:
        >>> import numpy as np
        >>> true = np.zeros((32, 32), bool); true[16, 4:28] = True
        >>> evaluator = SegmentationEvaluator(thresholds=9)
        >>> evaluator.add(true * 0.8, true, group="cfd", name="a.png")
        >>> round(evaluator.result()["cfd"]["ods"], 3)
        1.0
    """

    def __init__(self, thresholds: int = 99, tolerance_px: int = 2, fixed_threshold: float = 0.5):
        if int(thresholds) < 1:
            raise EvaluationInputError(f"thresholds must be >= 1, got {thresholds}.")
        if not 0.0 < fixed_threshold <= 1.0:
            raise EvaluationInputError(f"fixed_threshold must be in (0, 1], got {fixed_threshold}.")
        if tolerance_px < 0:
            raise EvaluationInputError(f"tolerance_px must be >= 0, got {tolerance_px}.")
        self.thresholds = np.round(np.linspace(0.01, 0.99, int(thresholds)), THRESHOLD_DECIMALS)
        self.tolerance_px = tolerance_px
        self.fixed_threshold = float(fixed_threshold)
        self._images: list[_ImageCounts] = []

    def add(self, prob, true, group: str = "all", name: str = "") -> None:
        """Add one image: ``prob`` float [H, W] in [0, 1], ``true`` bool [H, W] (or [H, W, 1])."""
        if group == POOLED:
            raise EvaluationInputError(f"group name {POOLED!r} is reserved; choose another.")
        label = name or f"image {len(self._images)}"
        prob_map = as_probability_map(prob, f"{label}: prob")
        true_mask = as_mask(true, f"{label}: true mask")
        same_shape(prob_map, true_mask, f"{label}: prob and true mask")
        matcher = SkeletonMatcher(thin(true_mask), self.tolerance_px)
        matched, n_pred = self._sweep(prob_map, matcher)
        fixed_pred = prob_map >= self.fixed_threshold
        self._images.append(
            _ImageCounts(
                name=label,
                group=str(group),
                matched=matched,
                n_pred=n_pred,
                n_true=matcher.n_true,
                pixel_fixed=pixel_counts(fixed_pred, true_mask),
                tolerance_fixed=matcher.matched_pairs(thin(fixed_pred)),
            )
        )

    def _sweep(self, prob_map: np.ndarray, matcher: SkeletonMatcher):
        """Matched and predicted skeleton counts at every sweep threshold (increasing)."""
        matched = np.zeros(self.thresholds.size, dtype=np.int64)
        n_pred = np.zeros(self.thresholds.size, dtype=np.int64)
        # Masks shrink as the threshold rises, so an unchanged area means an unchanged mask:
        # reuse the previous counts instead of thinning again.
        sorted_probs = np.sort(prob_map, axis=None)
        areas = sorted_probs.size - np.searchsorted(sorted_probs, self.thresholds, side="left")
        for k, threshold in enumerate(self.thresholds):
            if areas[k] == 0:
                break  # every higher threshold predicts nothing as well
            if k > 0 and areas[k] == areas[k - 1]:
                matched[k], n_pred[k] = matched[k - 1], n_pred[k - 1]
                continue
            matched[k], n_pred[k] = matcher.matched_pairs(thin(prob_map >= threshold))
        return matched, n_pred

    def _protocol(self) -> dict:
        return {
            "thresholds": int(self.thresholds.size),
            "threshold_range": [float(self.thresholds[0]), float(self.thresholds[-1])],
            "tolerance_px": self.tolerance_px,
            "thinning": THINNING,
            "matching": MATCHING,
            "fixed_threshold": self.fixed_threshold,
            "pixel_metrics": "counts summed over the group's images, then one ratio",
            "ois_images": "images with at least one true crack pixel",
            "ap": "step-wise area under the precision envelope of the tolerance PR sweep",
            "undefined_ratio": 0.0,
        }

    def _summarise(self, images: list[_ImageCounts]) -> dict:
        pixel = {key: sum(image.pixel_fixed[key] for image in images) for key in ("tp", "fp", "fn")}
        overlap = iou_dice_from_counts(pixel)
        fixed_matched = sum(image.tolerance_fixed[0] for image in images)
        fixed_pred = sum(image.tolerance_fixed[1] for image in images)
        n_true = sum(image.n_true for image in images)
        fixed_p, fixed_r = ratio(fixed_matched, fixed_pred), ratio(fixed_matched, n_true)

        matched = np.sum([image.matched for image in images], axis=0)
        n_pred = np.sum([image.n_pred for image in images], axis=0)
        precision, recall, f = _tolerance_prf(matched, n_pred, n_true)
        best = int(np.argmax(f))
        with_crack = [image for image in images if image.n_true > 0]
        image_best = [
            float(_tolerance_prf(i.matched, i.n_pred, i.n_true)[2].max()) for i in with_crack
        ]
        without_crack = [image for image in images if image.n_true == 0]
        return {
            "n_images": len(images),
            "iou": overlap["iou"],
            "dice": overlap["dice"],
            "pixel_precision": overlap["precision"],
            "pixel_recall": overlap["recall"],
            "pixel_f1": overlap["f1"],
            "tolerance_precision": fixed_p,
            "tolerance_recall": fixed_r,
            "tolerance_f1": float(f_scores(fixed_p, fixed_r)),
            "ods": float(f[best]),
            "ods_threshold": float(self.thresholds[best]),
            "ois": float(np.mean(image_best)) if image_best else 0.0,
            "ap": _envelope_area(recall, precision),
            "n_images_for_ois": len(with_crack),
            "images_without_crack": len(without_crack),
            "images_without_crack_with_false_alarm": sum(
                image.pixel_fixed["fp"] > 0 for image in without_crack
            ),
            "curve": {
                "thresholds": self.thresholds.tolist(),
                "precision": precision.tolist(),
                "recall": recall.tolist(),
                "f1": f.tolist(),
            },
            "protocol": self._protocol(),
        }

    def result(self) -> dict[str, dict]:
        """Metrics per group (sorted by name), plus ``"all_groups_pooled"`` with several groups.

        Each entry holds ``n_images, iou, dice, pixel_precision, pixel_recall, pixel_f1``
        (fixed threshold), ``tolerance_precision, tolerance_recall, tolerance_f1`` (fixed
        threshold), ``ods, ods_threshold, ois, ap`` (sweep), ``n_images_for_ois,
        images_without_crack, images_without_crack_with_false_alarm``, the sweep ``curve`` and the
        ``protocol`` that produced them.
        """
        if not self._images:
            raise EvaluationInputError("SegmentationEvaluator.result(): no images were added.")
        groups = sorted({image.group for image in self._images})
        results = {
            group: self._summarise([image for image in self._images if image.group == group])
            for group in groups
        }
        if len(groups) > 1:
            results[POOLED] = {**self._summarise(self._images), "pooled_across_groups": groups}
        return results

    def per_image(self) -> list[dict]:
        """One row per added image (fixed-threshold scores and its own best F), for a CSV."""
        rows = []
        for image in self._images:
            overlap = iou_dice_from_counts(image.pixel_fixed)
            matched, n_pred = image.tolerance_fixed
            _, _, sweep_f = _tolerance_prf(image.matched, image.n_pred, image.n_true)
            best = int(np.argmax(sweep_f))
            p, r = ratio(matched, n_pred), ratio(matched, image.n_true)
            rows.append(
                {
                    "name": image.name,
                    "group": image.group,
                    "iou": overlap["iou"],
                    "pixel_f1": overlap["f1"],
                    "tolerance_f1": float(f_scores(p, r)),
                    "best_f1": float(sweep_f[best]),
                    "best_threshold": float(self.thresholds[best]),
                    "true_crack_pixels": image.pixel_fixed["tp"] + image.pixel_fixed["fn"],
                }
            )
        return rows
