"""Tolerance matching of thin crack skeletons (the BSDS/HED boundary protocol, applied to cracks).

Pixel IoU punishes a crack drawn one pixel to the side as badly as a missed crack, although both
label and prediction of a 2 px wide crack are uncertain by about a pixel. The boundary protocol of
the Berkeley Segmentation Benchmark (BSDS), used by HED and by DeepCrack-style crack papers for
ODS/OIS, is tolerant instead:

1. Thin prediction and truth to one-pixel skeletons (``skimage.morphology.skeletonize``).
2. Match predicted and true skeleton pixels **one-to-one**, a pair being allowed when the pixel
   centres are at most ``tolerance_px`` apart (Euclidean). The matching is a *maximum* bipartite
   matching (see :func:`maximum_matching_size`), so two predicted pixels next to one true pixel
   count once, and no greedy order decides the result.
3. precision = matched predicted pixels / predicted skeleton pixels; recall = matched true pixels /
   true skeleton pixels; F = their harmonic mean. 0/0 is 0.0 (no prediction: precision 0).

BSDS uses a tolerance relative to the image diagonal (0.0075); crack papers use a fixed 2-5 px.
fisuras uses a fixed ``tolerance_px`` (default 2) and records it in every result.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.csgraph import maximum_flow
from skimage.morphology import skeletonize

from fisuras.evaluate.checks import EvaluationInputError, as_mask, same_shape

THINNING = "skimage.morphology.skeletonize (Zhang-Suen)"
MATCHING = (
    "one-to-one maximum bipartite matching (max flow, Dinic), Euclidean distance <= tolerance"
)


def thin(mask: np.ndarray) -> np.ndarray:
    """One-pixel skeleton of a bool mask, computed on the mask's bounding box only (faster)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros_like(mask, dtype=bool)
    cols = np.flatnonzero(mask.any(axis=0))
    # One pixel of margin so the crop never touches a crack pixel at its border.
    top, bottom = max(rows[0] - 1, 0), rows[-1] + 2
    left, right = max(cols[0] - 1, 0), cols[-1] + 2
    skeleton = np.zeros_like(mask, dtype=bool)
    skeleton[top:bottom, left:right] = skeletonize(mask[top:bottom, left:right])
    return skeleton


def disc_offsets(radius: float) -> np.ndarray:
    """All integer (dy, dx) with dy**2 + dx**2 <= radius**2: the pixels a match may reach.

    Example:
        >>> len(disc_offsets(1)), len(disc_offsets(2))
        (5, 13)
    """
    reach = int(np.floor(radius))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    inside = dy**2 + dx**2 <= radius**2
    return np.stack([dy[inside], dx[inside]], axis=1)


class SkeletonMatcher:
    """Matches predicted skeletons against one fixed true skeleton, many times (one per threshold).

    Built once per image: an index image of the true skeleton pixels, padded by the tolerance, and
    the set of pixels within the tolerance of any true pixel (a distance transform). Predicted
    pixels outside that set cannot match and are dropped before any pair is built; the candidate
    pairs are then read off the index image at the disc offsets, and the matching stays exact.
    """

    def __init__(self, true_skeleton: np.ndarray, tolerance_px: float):
        if tolerance_px < 0:
            raise EvaluationInputError(f"tolerance_px must be >= 0, got {tolerance_px}.")
        self.tolerance_px = float(tolerance_px)
        self.n_true = int(np.count_nonzero(true_skeleton))
        self._offsets = disc_offsets(self.tolerance_px)
        self._pad = int(np.floor(self.tolerance_px))
        # True pixel number at each (padded) position, -1 elsewhere: a neighbour lookup table.
        index = np.full(true_skeleton.shape, -1, dtype=np.int64)
        index[true_skeleton] = np.arange(self.n_true)
        self._true_index = np.pad(index, self._pad, constant_values=-1).ravel()
        self._width = true_skeleton.shape[1]
        padded_width = self._width + 2 * self._pad
        self._flat_offsets = self._offsets[:, 0] * padded_width + self._offsets[:, 1]
        # Pixels whose distance to the nearest true skeleton pixel is within the tolerance.
        self._near_true = (
            ndimage.distance_transform_edt(~true_skeleton) <= self.tolerance_px
            if self.n_true
            else np.zeros(true_skeleton.shape, dtype=bool)
        )

    def matched_pairs(self, pred_skeleton: np.ndarray) -> tuple[int, int]:
        """``(matched, n_pred)``: size of the maximum one-to-one matching, predicted pixel count."""
        n_pred = int(np.count_nonzero(pred_skeleton))
        # Flat indices: np.argwhere is much slower on a full image (figure: BENCHMARKS.md,
        # 'Evaluation and synthetic data').
        candidates = np.flatnonzero(pred_skeleton & self._near_true)
        if candidates.size == 0:
            return 0, n_pred
        rows, cols = np.divmod(candidates, self._width)
        padded = (rows + self._pad) * (self._width + 2 * self._pad) + cols + self._pad
        # neighbours[i, k]: the true pixel at offset k from candidate i, or -1.
        neighbours = self._true_index[padded[:, None] + self._flat_offsets]
        present = neighbours >= 0
        pred_ids = np.repeat(np.arange(candidates.size), present.sum(axis=1))
        return maximum_matching_size(pred_ids, neighbours[present]), n_pred


def maximum_matching_size(left: np.ndarray, right: np.ndarray) -> int:
    """Size of a maximum matching of the bipartite graph with edges ``left[k] -- right[k]``.

    Solved as a unit-capacity maximum flow with Dinic's algorithm
    (``scipy.sparse.csgraph.maximum_flow``), which is O(E sqrt(V)) like Hopcroft-Karp. Why not
    ``maximum_bipartite_matching``: in SciPy <= 1.17 its Hopcroft-Karp search does not prune dead
    ends and takes exponential time on ladder-shaped graphs (scipy/scipy#26147), exactly the graph
    two parallel skeleton lines one pixel apart make (figure for one crack: BENCHMARKS.md,
    'Evaluation and synthetic data').

    Example:
        >>> maximum_matching_size(np.array([0, 1, 1]), np.array([0, 0, 1]))  # 0-0, 1-1
        2
    """
    if left.size == 0:
        return 0
    n_left, n_right = int(left.max()) + 1, int(right.max()) + 1  # edgeless vertices are harmless
    # Nodes: left 0..n_left-1, right n_left.., then source and sink. The network is written
    # straight into CSR form, row by row: source -> every left, left -> its rights (edges sorted
    # by left), every right -> sink, sink -> nothing.
    source, sink = n_left + n_right, n_left + n_right + 1
    order = np.argsort(left, kind="stable")
    heads = np.concatenate([n_left + right[order], np.full(n_right, sink), np.arange(n_left)])
    edges_per_left = np.bincount(left, minlength=n_left)
    row_ends = np.concatenate(
        [np.cumsum(edges_per_left), left.size + np.arange(1, n_right + 1), [heads.size] * 2]
    )
    capacity = sparse.csr_array(
        (np.ones(heads.size, dtype=np.int32), heads.astype(np.int32), np.r_[0, row_ends]),
        shape=(sink + 1, sink + 1),
    )
    return int(maximum_flow(capacity, source, sink, method="dinic").flow_value)


def tolerance_counts(pred, true, tolerance_px: float = 2) -> dict[str, int]:
    """Thin both masks, match skeleton pixels one-to-one within ``tolerance_px``; return counts.

    Returns ``matched_pred, n_pred, matched_true, n_true`` (the matching is one-to-one, so the two
    matched counts are equal). precision = matched_pred / n_pred, recall = matched_true / n_true.

    Example:
        >>> import numpy as np
        >>> true = np.zeros((9, 20), bool); true[4, 2:18] = True
        >>> shifted = np.roll(true, 1, axis=0)          # the same line one pixel lower
        >>> tolerance_counts(shifted, true, tolerance_px=2)
        {'matched_pred': 16, 'n_pred': 16, 'matched_true': 16, 'n_true': 16}
    """
    pred_mask, true_mask = as_mask(pred, "pred"), as_mask(true, "true")
    same_shape(pred_mask, true_mask)
    matcher = SkeletonMatcher(thin(true_mask), tolerance_px)
    matched, n_pred = matcher.matched_pairs(thin(pred_mask))
    return {
        "matched_pred": matched,
        "n_pred": n_pred,
        "matched_true": matched,
        "n_true": matcher.n_true,
    }
