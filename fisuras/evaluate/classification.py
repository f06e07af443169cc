"""Patch classification metrics (cracked = positive class), pure NumPy.

Conventions used throughout:

* ``scores`` are probabilities of "cracked" in [0, 1]; a patch is predicted cracked when
  ``score >= threshold`` (the same rule as the curves below, so a threshold read off a curve
  reproduces its point exactly).
* Undefined ratios (0/0) are 0.0 with no warning (see :mod:`fisuras.evaluate.ratios`).
  ``roc_auc`` is ``None`` when only one class is present; ``pr_auc`` is ``None`` when there are no
  positives (with positives only it is 1.0).
* Tied scores are handled as one block: the curves get one point per distinct score, so the ROC AUC
  counts a tied positive/negative pair as half, like the Mann-Whitney U statistic.
* ``pr_auc`` is the average precision, step-wise like scikit-learn's ``average_precision_score``:
  the sum over distinct thresholds of (recall gain) x (precision there), no interpolation.
"""

from __future__ import annotations

import numpy as np

from fisuras.evaluate.checks import EvaluationInputError, labels_and_scores
from fisuras.evaluate.ratios import f_scores, ratio, ratios

OVERALL = "overall"


def _cumulative_counts(labels: np.ndarray, scores: np.ndarray):
    """True/false positive counts at each distinct score used as threshold, highest first."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # The last index of each block of tied scores: a threshold cannot split a tie.
    block_ends = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    true_positives = np.cumsum(sorted_labels)[block_ends]
    false_positives = block_ends + 1 - true_positives
    return true_positives, false_positives, sorted_scores[block_ends]


def roc_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve as ``(fpr, tpr, thresholds)``, thresholds decreasing, starting at (0, 0).

    The first threshold is ``inf`` (nothing predicted cracked), as in scikit-learn >= 1.3.
    With one class only, the rate of the missing class is 0.0 everywhere.

    Example:
        >>> fpr, tpr, thr = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    labels, probabilities = labels_and_scores(y_true, scores)
    tps, fps, thresholds = _cumulative_counts(labels, probabilities)
    tps, fps = np.r_[0, tps], np.r_[0, fps]
    fpr = ratios(fps, np.count_nonzero(~labels))
    tpr = ratios(tps, np.count_nonzero(labels))
    return fpr, tpr, np.r_[np.inf, thresholds]


def pr_curve(y_true, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall curve as ``(precision, recall, thresholds)``, scikit-learn's layout.

    Thresholds increase; ``precision`` and ``recall`` have one more entry than ``thresholds``: the
    final point (precision 1, recall 0) has no threshold. Without positives, recall is 0.0.

    Example:
        >>> p, r, t = pr_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        >>> p.round(3).tolist(), r.tolist(), t.tolist()
        ([0.5, 0.667, 0.5, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5, 0.0], [0.1, 0.35, 0.4, 0.8])
    """
    labels, probabilities = labels_and_scores(y_true, scores)
    tps, fps, thresholds = _cumulative_counts(labels, probabilities)
    precision = ratios(tps, tps + fps)
    recall = ratios(tps, np.count_nonzero(labels))
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def _average_precision(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    positives = np.count_nonzero(labels)
    if positives == 0:
        return None
    tps, fps, _ = _cumulative_counts(labels, probabilities)
    recall_gain = np.diff(np.r_[0, tps]) / positives
    return float(np.sum(recall_gain * tps / (tps + fps)))


def _roc_auc(labels: np.ndarray, probabilities: np.ndarray) -> float | None:
    if labels.all() or not labels.any():
        return None
    fpr, tpr, _ = roc_curve(labels, probabilities)
    return float(np.trapezoid(tpr, fpr))


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise EvaluationInputError(f"threshold must be in [0, 1], got {threshold}.")
    return threshold


def classification_metrics(y_true, scores, threshold: float = 0.5) -> dict:
    """All patch-level metrics at one decision threshold, plus the threshold-free AUCs.

    Returns a dict with ``n, positives, accuracy, precision, recall, f1, specificity, roc_auc,
    pr_auc, threshold`` and ``confusion`` ``{"tn", "fp", "fn", "tp"}``; plain Python numbers.

    Example:
        >>> m = classification_metrics([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.6], threshold=0.5)
        >>> m["confusion"], m["recall"], m["roc_auc"]
        ({'tn': 1, 'fp': 1, 'fn': 1, 'tp': 1}, 0.5, 0.75)
    """
    labels, probabilities = labels_and_scores(y_true, scores)
    threshold = _check_threshold(threshold)
    predicted = probabilities >= threshold
    tp = int(np.count_nonzero(predicted & labels))
    fp = int(np.count_nonzero(predicted & ~labels))
    fn = int(np.count_nonzero(~predicted & labels))
    tn = int(np.count_nonzero(~predicted & ~labels))
    return {
        "n": int(labels.size),
        "positives": tp + fn,
        "accuracy": ratio(tp + tn, labels.size),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "specificity": ratio(tn, tn + fp),
        "roc_auc": _roc_auc(labels, probabilities),
        "pr_auc": _average_precision(labels, probabilities),
        "threshold": threshold,
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def best_f1_threshold(y_true, scores) -> float:
    """The threshold that maximises F1 on these (validation) labels and scores.

    Every distinct score is tried as a threshold. Any threshold between the winning score and the
    next lower distinct score gives the same predictions here, so the middle of that gap is
    returned, as its shortest decimal (:func:`short_threshold`): the same validation F1, with a
    wide margin for unseen patches. When several thresholds tie on F1, the highest one wins
    (fewer false alarms).

    Raises :class:`EvaluationInputError` when there are no positives (F1 is 0 at every threshold).

    Example:
        >>> best_f1_threshold([0, 0, 1, 1], [0.1, 0.3, 0.7, 0.9])
        0.5
    """
    labels, probabilities = labels_and_scores(y_true, scores)
    positives = np.count_nonzero(labels)
    if positives == 0:
        raise EvaluationInputError(
            "best_f1_threshold needs at least one positive (cracked) label; F1 is 0 everywhere."
        )
    tps, fps, thresholds = _cumulative_counts(labels, probabilities)
    f1 = f_scores(ratios(tps, tps + fps), tps / positives)
    best = int(np.argmax(f1))  # first maximum = highest threshold among ties
    if best + 1 < thresholds.size:
        return short_threshold(float(thresholds[best + 1]), float(thresholds[best]))
    return float(thresholds[best])


def short_threshold(low: float, high: float) -> float:
    """The decimal with the fewest digits in the middle half of the gap between two scores.

    Every threshold in ``(low, high]`` gives the same predictions on these scores; the midpoint of
    float32 scores reads 0.6234567731618881 in the model card, this reads 0.62 (and keeps at
    least a quarter of the gap on each side).

    Example:
        >>> short_threshold(0.61234, 0.63), short_threshold(0.3, 0.7)
        (0.62, 0.5)
    """
    middle, quarter = (low + high) / 2.0, (high - low) / 4.0
    for digits in range(1, 16):
        rounded = round(middle, digits)
        if abs(rounded - middle) <= quarter:
            return rounded
    return middle


def metrics_by_group(y_true, scores, groups, threshold: float = 0.5) -> dict[str, dict]:
    """:func:`classification_metrics` for all patches (``"overall"``) and for each group.

    ``groups`` holds one name per patch, e.g. the surface ``"deck"``, ``"pavement"``, ``"wall"``.
    The result maps ``"overall"`` first, then each group name in sorted order.

    Example:
        >>> surfaces = ["deck", "deck", "wall", "wall"]
        >>> res = metrics_by_group([0, 1, 0, 1], [0.2, 0.8, 0.7, 0.9], surfaces)
        >>> list(res), res["wall"]["specificity"]
        (['overall', 'deck', 'wall'], 0.0)
    """
    labels, probabilities = labels_and_scores(y_true, scores)
    names = np.asarray(groups).astype(str).reshape(-1)
    if names.size != labels.size:
        raise EvaluationInputError(f"groups has {names.size} entries for {labels.size} labels.")
    if OVERALL in names:
        raise EvaluationInputError(f"{OVERALL!r} is reserved for all patches; rename that group.")
    results = {OVERALL: classification_metrics(labels, probabilities, threshold)}
    for name in sorted(set(names.tolist())):
        member = names == name
        results[name] = classification_metrics(labels[member], probabilities[member], threshold)
    return results
