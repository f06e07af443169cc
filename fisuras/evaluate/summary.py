"""Short text summaries of evaluation figures, for the terminal."""

from __future__ import annotations

from typing import Any

DETECT_KEYS = ("n", "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
SEGMENT_KEYS = ("n_images", "iou", "dice", "tolerance_f1", "ods", "ois", "ap")
MODEL_ROW = "model"


def summary_lines(metrics: dict[str, Any]) -> list[str]:
    """One line per group of the test figures (surfaces for detection, sets for segmentation).

    When ``metrics["floor"]`` holds the no-learning floor's figures (a segmenter's metrics, see
    :mod:`fisuras.evaluate.floor`), each segmentation group gets a ``model`` row, the floor's
    row with the same keys, and a verdict on the ODS difference instead of the single line.

    Example:
        >>> summary_lines({"threshold": 0.4, "test": {"overall": {"n": 10, "f1": 0.8}}})
        ['threshold 0.400', 'overall    n=10  f1=0.800']
        >>> for line in summary_lines({
        ...     "test": {"cfd": {"n_images": 7, "iou": 0.5, "ods": 0.75}},
        ...     "floor": {"label": "black top-hat, no learning",
        ...               "figures": {"cfd": {"n_images": 7, "iou": 0.1, "ods": 0.5}}},
        ... }):
        ...     print(line)
        cfd
          model                                n_images=7  iou=0.500  ods=0.750
          floor (black top-hat, no learning)   n_images=7  iou=0.100  ods=0.500
          learning adds +0.250 ODS over the floor
    """
    lines = []
    if metrics.get("threshold") is not None:
        lines.append(f"threshold {metrics['threshold']:.3f}")
    floor = metrics.get("floor") or {}
    floor_figures = floor.get("figures") or {}
    for group, figures in (metrics.get("test") or {}).items():
        if not isinstance(figures, dict):
            continue
        if "iou" in figures and isinstance(floor_figures.get(group), dict):
            lines += floor_comparison_lines(group, figures, floor_figures[group], _label(floor))
            continue
        keys = SEGMENT_KEYS if "iou" in figures else DETECT_KEYS
        lines.append(f"{group:<10} " + _cells(figures, keys))
    return lines


def floor_comparison_lines(
    group: str, model: dict[str, Any], floor: dict[str, Any], floor_label: str = "floor"
) -> list[str]:
    """A group's name, its ``model`` and floor rows (same keys, aligned), and the ODS verdict.

    Example:
        >>> floor_comparison_lines("cfd", {"ods": 0.4}, {"ods": 0.5}, "floor (top-hat)")[-1]
        '  learning adds -0.100 ODS over the floor: learning did not pay'
    """
    width = max(len(MODEL_ROW), len(floor_label)) + 2
    lines = [
        group,
        f"  {MODEL_ROW:<{width}} " + _cells(model, SEGMENT_KEYS),
        f"  {floor_label:<{width}} " + _cells(floor, SEGMENT_KEYS),
    ]
    if model.get("ods") is not None and floor.get("ods") is not None:
        gain = model["ods"] - floor["ods"]
        verdict = f"  learning adds {gain:+.3f} ODS over the floor"
        # Three decimals is what the rows show; a gain that rounds to zero or below is no gain.
        lines.append(verdict if round(gain, 3) > 0 else verdict + ": learning did not pay")
    return lines


def _label(floor: dict[str, Any]) -> str:
    """``floor (<what it is>)``, from the label the floor's metrics carry (or its method)."""
    what = floor.get("label") or floor.get("method")
    return f"floor ({what})" if what else "floor"


def _cells(figures: dict[str, Any], keys: tuple[str, ...]) -> str:
    return "  ".join(f"{key}={_fmt(figures[key])}" for key in keys if key in figures)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
