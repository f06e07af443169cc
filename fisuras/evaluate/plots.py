"""Figures for a run folder: training history, confusion matrix, ROC/PR curves, prediction grid.

Every figure is an object-oriented ``matplotlib.figure.Figure`` drawn on its own Agg canvas and
written atomically as PNG. ``matplotlib.pyplot`` is never imported, so no global figure state or
backend choice leaks into the caller (safe in notebooks, threads and headless servers).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fisuras.evaluate.checks import EvaluationInputError, labels_and_scores
from fisuras.evaluate.classification import classification_metrics, pr_curve, roc_curve
from fisuras.files import atomic_write

CLASS_NAMES = ("uncracked", "cracked")
WRONG_COLOUR = "#d62728"
DPI = 110


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, out_png: str | Path) -> Path:
    return atomic_write(out_png, lambda tmp: figure.savefig(tmp, format="png"))


# --- training history -------------------------------------------------------------------------


def _read_history_csv(path: Path) -> dict[str, list]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise EvaluationInputError(f"{path}: history CSV has no rows.")
    return {key: [row.get(key) for row in rows] for key in rows[0]}


def _as_series(values: Sequence) -> np.ndarray | None:
    """Floats with NaN for gaps; ``None`` when the column is not numeric (e.g. a phase name)."""
    series = []
    for value in values:
        if value is None or value == "":
            series.append(math.nan)
            continue
        try:
            series.append(float(value))
        except (TypeError, ValueError):
            return None
    return np.asarray(series, dtype=np.float64)


def plot_history(history: dict[str, list[float]] | str | Path, out_png: str | Path) -> Path:
    """Loss and metrics per epoch, training and ``val_`` curves sharing a panel.

    ``history`` is a Keras-style dict of lists or the path of a ``history.csv`` (Keras CSVLogger
    layout). Non-numeric columns are skipped; ``None`` or empty cells are gaps. An ``epoch``
    column, when present, is the x axis.
    """
    if isinstance(history, str | Path):
        history = _read_history_csv(Path(history))
    columns = {key: _as_series(values) for key, values in history.items()}
    columns = {key: series for key, series in columns.items() if series is not None}
    epochs = columns.pop("epoch", None)
    names = [key for key in columns if not key.startswith("val_")]
    names += [key[4:] for key in columns if key.startswith("val_") and key[4:] not in columns]
    names.sort(key=lambda name: name != "loss")  # loss first, the rest in file order
    if not names:
        raise EvaluationInputError("history has no numeric columns to plot.")

    n_cols = min(3, len(names))
    n_rows = math.ceil(len(names) / n_cols)
    figure = _new_figure(4.2 * n_cols, 3.0 * n_rows)
    axes = figure.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        for key, label, style in ((name, "train", "-"), (f"val_{name}", "validation", "--")):
            if key in columns:
                series = columns[key]
                x = epochs if epochs is not None else np.arange(1, series.size + 1)
                ax.plot(x, series, style, marker="o", markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if name in ("lr", "learning_rate") and np.nanmin(columns[name]) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return _save(figure, out_png)


# --- classification figures -------------------------------------------------------------------


def plot_confusion(
    confusion: dict, out_png: str | Path, class_names: Sequence[str] = CLASS_NAMES
) -> Path:
    """2x2 confusion matrix (rows = true class, columns = predicted) with counts and row %."""
    try:
        matrix = np.array(
            [[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]], dtype=int
        )
    except KeyError as missing:
        raise EvaluationInputError(f"confusion needs tn, fp, fn, tp; missing {missing}.") from None
    row_totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, row_totals, out=np.zeros(matrix.shape), where=row_totals > 0)

    figure = _new_figure(4.2, 3.8)
    ax = figure.subplots()
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if shares[row, col] > 0.5 else "black"
        text = f"{count}\n{100 * shares[row, col]:.1f}%"
        ax.text(col, row, text, ha="center", va="center", color=colour, fontsize=12)
    ax.set_xticks([0, 1], [f"pred {name}" for name in class_names])
    ax.set_yticks([0, 1], [f"true {name}" for name in class_names])
    ax.set_title(f"confusion matrix (n = {matrix.sum()})")
    return _save(figure, out_png)


def plot_roc_pr(y_true, scores, out_png: str | Path, threshold: float | None = None) -> Path:
    """ROC curve (with AUC) and precision-recall curve (with AP and the chance level) side by side.

    With ``threshold``, the operating point at that threshold is marked on both curves.
    """
    labels, probabilities = labels_and_scores(y_true, scores)
    metrics = classification_metrics(labels, probabilities, 0.5 if threshold is None else threshold)
    fpr, tpr, _ = roc_curve(labels, probabilities)
    precision, recall, _ = pr_curve(labels, probabilities)

    figure = _new_figure(9.0, 4.0)
    roc_ax, pr_ax = figure.subplots(1, 2)
    auc = metrics["roc_auc"]
    roc_ax.plot(fpr, tpr, label=f"AUC {auc:.3f}" if auc is not None else "AUC undefined")
    roc_ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC")

    ap = metrics["pr_auc"]
    pr_ax.step(recall, precision, where="post", label=f"AP {ap:.3f}" if ap is not None else "AP -")
    prevalence = metrics["positives"] / metrics["n"]
    pr_ax.axhline(prevalence, linestyle=":", color="grey", label=f"chance ({prevalence:.2f})")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall")

    if threshold is not None:
        label = f"threshold {threshold:.2f}"
        roc_ax.plot(1 - metrics["specificity"], metrics["recall"], "o", color="black", label=label)
        pr_ax.plot(metrics["recall"], metrics["precision"], "o", color="black", label=label)
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is roc_ax else "lower left", fontsize="small")
    return _save(figure, out_png)


# --- prediction grid --------------------------------------------------------------------------


def _display_image(image: np.ndarray) -> np.ndarray:
    """uint8 as is; floats stretched to [0, 1] from their own range (any preprocessing works)."""
    if image.dtype == np.uint8:
        return image
    image = image.astype(np.float64)
    low, high = float(np.min(image)), float(np.max(image))
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def choose_grid_items(wrong: np.ndarray, margin: np.ndarray, max_items: int) -> np.ndarray:
    """Indices to show: mistakes first (most confident first), then correct ones spread evenly.

    Mistakes fill at most three quarters of the slots while correct predictions remain, so the
    grid shows what right looks like too; spare slots go to whichever pool has items left.

    Example:
        >>> wrong = np.array([True, False, False, True]); margin = np.array([0.1, 0.4, 0.2, 0.3])
        >>> choose_grid_items(wrong, margin, 3).tolist()
        [3, 0, 1]
    """
    wrong_idx = np.flatnonzero(wrong)
    wrong_idx = wrong_idx[np.argsort(-margin[wrong_idx], kind="stable")]
    right_idx = np.flatnonzero(~wrong)
    right_idx = right_idx[np.argsort(-margin[right_idx], kind="stable")]
    n_right = min(right_idx.size, max(max_items - wrong_idx.size, max_items // 4))
    n_wrong = min(wrong_idx.size, max_items - n_right)
    spread = np.linspace(0, right_idx.size - 1, n_right).round().astype(int) if n_right else []
    return np.concatenate([wrong_idx[:n_wrong], right_idx[spread]]).astype(int)


def plot_prediction_grid(
    images,
    y_true,
    scores,
    threshold: float,
    out_png: str | Path,
    max_items: int = 32,
    class_names: Sequence[str] = CLASS_NAMES,
) -> Path:
    """A grid of patches titled true class / predicted class / score; mistakes framed in red.

    ``images`` is uint8 [N, H, W, 3] (or [N, H, W]; float images are stretched to their own range
    for display). When fewer images than labels are given (a caller kept only the first few), the
    labels and scores are cut to the images.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise EvaluationInputError(f"images must be [N, H, W] or [N, H, W, C]; got {images.shape}.")
    labels, probabilities = labels_and_scores(y_true, scores)
    if len(images) > labels.size:
        raise EvaluationInputError(f"{len(images)} images but only {labels.size} labels.")
    labels, probabilities = labels[: len(images)], probabilities[: len(images)]
    predicted = probabilities >= threshold
    wrong = predicted != labels
    chosen = choose_grid_items(wrong, np.abs(probabilities - threshold), max(1, int(max_items)))

    n_cols = min(8, len(chosen))
    n_rows = math.ceil(len(chosen) / n_cols)
    figure = _new_figure(1.9 * n_cols, 2.2 * n_rows)
    axes = figure.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, index in zip(axes, chosen, strict=False):
        picture = _display_image(images[index])
        ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
        ax.set_xticks([])
        ax.set_yticks([])
        title = (
            f"true {class_names[int(labels[index])]}\n"
            f"pred {class_names[int(predicted[index])]} {probabilities[index]:.2f}"
        )
        colour = WRONG_COLOUR if wrong[index] else "black"
        ax.set_title(title, fontsize=8, color=colour)
        for spine in ax.spines.values():
            spine.set_color(colour if wrong[index] else "#cccccc")
            spine.set_linewidth(3 if wrong[index] else 1)
    for ax in axes[len(chosen) :]:
        ax.set_visible(False)
    n_wrong = int(np.count_nonzero(wrong))
    figure.suptitle(
        f"{len(chosen)} of {len(images)} patches; {n_wrong} mistakes at threshold "
        f"{threshold:.2f} (red frame)",
        fontsize=10,
    )
    return _save(figure, out_png)
