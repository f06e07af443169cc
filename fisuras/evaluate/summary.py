"""Short text summaries of evaluation figures, for the terminal."""

from __future__ import annotations

from typing import Any

DETECT_KEYS = ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
SEGMENT_KEYS = ("n_images", "iou", "dice", "tolerance_f1", "ods", "ois", "ap")


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """One line per group of the test figures (surfaces for detection, sets for segmentation).

    Example:
        >>> summary_lines({"threshold": 0.4, "test": {"overall": {"n": 10, "f1": 0.8}}})
        ['threshold 0.400', 'overall    n=10  f1=0.800']
    """
    lines = []
    if metrics.get("threshold") is not None:
        lines.append(f"threshold {metrics['threshold']:.3f}")
    for group, figures in (metrics.get("test") or {}).items():
        if not isinstance(figures, dict):
            continue
        keys = SEGMENT_KEYS if "iou" in figures else DETECT_KEYS
        cells = [f"{key}={_fmt(figures[key])}" for key in keys if key in figures]
        lines.append(f"{group:<10} " + "  ".join(cells))
    return lines


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
