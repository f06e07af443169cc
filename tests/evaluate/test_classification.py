"""Patch classification metrics against hand-computed cases and brute-force definitions."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from fisuras.evaluate.checks import EvaluationInputError
from fisuras.evaluate.classification import (
    best_f1_threshold,
    classification_metrics,
    metrics_by_group,
    pr_curve,
    roc_curve,
    short_threshold,
)

# Ten patches, sorted by score for readability (index: label score).
#   0: 1 .95   1: 1 .85   2: 1 .60   3: 0 .55   4: 1 .45
#   5: 0 .40   6: 0 .30   7: 0 .20   8: 0 .10   9: 0 .05
HAND_LABELS = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
HAND_SCORES = [0.95, 0.85, 0.60, 0.55, 0.45, 0.40, 0.30, 0.20, 0.10, 0.05]


def test_hand_computed_case_at_threshold_half():
    m = classification_metrics(HAND_LABELS, HAND_SCORES, threshold=0.5)
    # score >= 0.5 -> patches 0-3 predicted cracked: TP = 0,1,2; FP = 3; FN = 4; TN = 5-9.
    assert m["confusion"] == {"tn": 5, "fp": 1, "fn": 1, "tp": 3}
    assert (m["n"], m["positives"]) == (10, 4)
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(0.75)
    assert m["specificity"] == pytest.approx(5 / 6)
    # ROC AUC = share of (positive, negative) pairs ranked right: 24 pairs, only 0.45 < 0.55 wrong.
    assert m["roc_auc"] == pytest.approx(23 / 24)
    # AP: positives at ranks 1, 2, 3, 5 -> precisions 1, 1, 1, 4/5, averaged.
    assert m["pr_auc"] == pytest.approx((1 + 1 + 1 + 0.8) / 4)
    assert m["threshold"] == 0.5


def test_perfect_and_inverted_scores():
    labels = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    perfect = labels * 0.8 + 0.1
    assert classification_metrics(labels, perfect)["roc_auc"] == pytest.approx(1.0)
    assert classification_metrics(labels, perfect)["pr_auc"] == pytest.approx(1.0)
    inverted = 1.0 - perfect
    assert classification_metrics(labels, inverted)["roc_auc"] == pytest.approx(0.0)
    assert classification_metrics(labels, inverted)["accuracy"] == 0.0


def test_tied_scores_count_as_half_and_order_does_not_matter():
    labels = [1, 0, 1, 0]
    scores = [0.5, 0.5, 0.8, 0.2]
    m = classification_metrics(labels, scores)
    # Pairs: (.5 vs .5) tie = 0.5, (.5 vs .2) = 1, (.8 vs .5) = 1, (.8 vs .2) = 1 -> 3.5 / 4.
    assert m["roc_auc"] == pytest.approx(0.875)
    # Threshold .8: P 1, R .5; threshold .5 (the tie as one block): P 2/3, R 1.
    assert m["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    swapped = classification_metrics([0, 1, 1, 0], [0.5, 0.5, 0.8, 0.2])
    assert (swapped["roc_auc"], swapped["pr_auc"]) == (m["roc_auc"], m["pr_auc"])
    all_tied = classification_metrics([0, 1, 1, 0, 1], [0.3] * 5)
    assert all_tied["roc_auc"] == pytest.approx(0.5)
    assert all_tied["pr_auc"] == pytest.approx(3 / 5)  # one block: precision 3/5 at recall 1


def test_roc_auc_equals_pairwise_ranking_with_many_ties():
    rng = np.random.default_rng(7)
    labels = rng.random(200) < 0.3
    scores = np.round(rng.random(200) * 0.5 + labels * 0.3, 1)  # coarse: lots of ties
    pairs = list(itertools.product(scores[labels], scores[~labels]))
    expected = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    assert classification_metrics(labels, scores)["roc_auc"] == pytest.approx(expected)


def test_one_class_only_gives_none_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        negatives = classification_metrics([0, 0, 0], [0.1, 0.7, 0.2])
        positives = classification_metrics([1, 1], [0.9, 0.3])
        fpr, tpr, _ = roc_curve([0, 0, 0], [0.1, 0.7, 0.2])
    assert negatives["roc_auc"] is None and negatives["pr_auc"] is None
    assert negatives["precision"] == 0.0 and negatives["recall"] == 0.0 and negatives["f1"] == 0.0
    assert negatives["specificity"] == pytest.approx(2 / 3)
    assert positives["roc_auc"] is None
    assert positives["pr_auc"] == pytest.approx(1.0)
    assert positives["specificity"] == 0.0
    assert tpr.tolist() == [0.0] * len(tpr) and fpr[-1] == 1.0


def test_roc_curve_runs_from_origin_to_one_and_never_decreases():
    fpr, tpr, thresholds = roc_curve(HAND_LABELS, HAND_SCORES)
    assert (fpr[0], tpr[0], thresholds[0]) == (0.0, 0.0, np.inf)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(thresholds) < 0)


def test_pr_curve_layout_matches_its_thresholds():
    precision, recall, thresholds = pr_curve(HAND_LABELS, HAND_SCORES)
    assert len(precision) == len(recall) == len(thresholds) + 1
    assert (precision[-1], recall[-1]) == (1.0, 0.0)
    assert np.all(np.diff(thresholds) > 0)
    # Each point reproduces the metrics at its own threshold (score >= threshold).
    for p, r, t in zip(precision[:-1], recall[:-1], thresholds, strict=True):
        m = classification_metrics(HAND_LABELS, HAND_SCORES, threshold=t)
        assert (p, r) == pytest.approx((m["precision"], m["recall"]))


def test_best_f1_threshold_separable_case_lies_in_the_gap():
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.2, 0.35, 0.6, 0.7, 0.9]
    threshold = best_f1_threshold(labels, scores)
    assert 0.35 < threshold <= 0.6
    assert threshold == 0.5  # the shortest decimal in the middle of the gap (midpoint 0.475)
    assert classification_metrics(labels, scores, threshold)["f1"] == 1.0


def test_best_f1_threshold_hand_case():
    # Thresholds .9/.8/.7/.3/.2 give F1 .5/.4/.667/.857/.75: best at .3, next lower score .2.
    assert best_f1_threshold([1, 0, 1, 1, 0], [0.9, 0.8, 0.7, 0.3, 0.2]) == pytest.approx(0.25)


def test_best_f1_threshold_needs_positives():
    with pytest.raises(EvaluationInputError, match="positive"):
        best_f1_threshold([0, 0], [0.2, 0.4])


def test_metrics_by_group_keeps_surfaces_apart():
    labels = [1, 0, 1, 0]
    scores = [0.9, 0.1, 0.2, 0.8]  # the deck patches are right, the wall patches both wrong
    groups = ["deck", "deck", "wall", "wall"]
    result = metrics_by_group(labels, scores, groups, threshold=0.5)
    assert list(result) == ["overall", "deck", "wall"]
    assert result["deck"]["accuracy"] == 1.0
    assert result["wall"]["accuracy"] == 0.0
    assert result["overall"]["accuracy"] == 0.5
    assert result["wall"]["n"] == 2
    with pytest.raises(EvaluationInputError, match="reserved"):
        metrics_by_group(labels, scores, ["overall"] * 4)
    with pytest.raises(EvaluationInputError, match="entries"):
        metrics_by_group(labels, scores, ["deck"] * 3)


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 1], [-2.0, 3.5], "logits"),
        ([0, 1, 1], [0.2, 0.3], "3 labels"),
        ([0, 255], [0.2, 0.3], "only 0 and 1"),
        ([], [], "empty"),
        ([0, 1], [0.2, float("nan")], "NaN"),
    ],
)
def test_bad_input_is_refused_clearly(labels, scores, message):
    with pytest.raises(EvaluationInputError, match=message):
        classification_metrics(labels, scores)


def test_best_f1_threshold_of_float32_scores_is_a_short_decimal():
    # issue 14: the midpoint of two float32 scores went into the model card as 0.6117284297943115
    scores = np.array([0.1234567, 0.62345678, 0.6000001, 0.2], np.float32)
    labels = [0, 1, 0, 0]
    threshold = best_f1_threshold(labels, scores)
    assert threshold == 0.61 and repr(threshold) == "0.61"
    assert float(scores[2]) < threshold <= float(scores[1])  # the same predictions as before
    assert classification_metrics(labels, scores, threshold)["f1"] == 1.0


@pytest.mark.parametrize("seed", range(20))
def test_short_threshold_stays_in_the_middle_half_of_the_gap(seed):
    low, high = sorted(np.random.default_rng(seed).random(2) ** (seed % 5 + 1))
    threshold = short_threshold(low, high)
    assert abs(threshold - (low + high) / 2) <= (high - low) / 4
    assert len(repr(threshold)) <= len(repr((low + high) / 2))
