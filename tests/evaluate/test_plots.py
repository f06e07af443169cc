"""Every plot writes a valid PNG; pyplot is never touched."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fisuras.evaluate import plots
from fisuras.evaluate.checks import EvaluationInputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_size=(200, 150)):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        # Not a blank canvas: something was drawn.
        assert np.asarray(image.convert("L")).std() > 1.0


def test_plot_history_from_dict_with_gaps(tmp_path):
    history = {
        "loss": [0.9, 0.6, 0.4],
        "val_loss": [1.0, None, 0.5],
        "auc": [0.6, 0.7, 0.8],
        "val_auc": [0.55, 0.65, 0.75],
        "learning_rate": [1e-3, 1e-3, 1e-4],
        "phase": ["frozen", "frozen", "fine-tune"],
    }
    out = plots.plot_history(history, tmp_path / "plots" / "history.png")
    assert_png(out)


def test_plot_history_from_keras_csv(tmp_path):
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,loss,val_loss,iou\n0,0.9,1.0,0.1\n1,0.5,0.7,0.3\n")
    assert_png(plots.plot_history(csv_path, tmp_path / "history.png"))
    with pytest.raises(EvaluationInputError, match="numeric"):
        plots.plot_history({"phase": ["a"]}, tmp_path / "none.png")


def test_plot_confusion_and_roc_pr(tmp_path):
    assert_png(plots.plot_confusion({"tn": 50, "fp": 5, "fn": 3, "tp": 12}, tmp_path / "c.png"))
    rng = np.random.default_rng(0)
    labels = rng.random(80) < 0.2
    scores = np.clip(labels * 0.4 + rng.random(80) * 0.6, 0, 1)
    assert_png(plots.plot_roc_pr(labels, scores, tmp_path / "roc.png", threshold=0.5))
    # One class only: the curves are degenerate but the figure is still written.
    assert_png(plots.plot_roc_pr(np.zeros(5), np.linspace(0, 1, 5), tmp_path / "one.png"))


def test_plot_prediction_grid_shows_mistakes_first(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, size=(40, 24, 24, 3), dtype=np.uint8)
    labels = np.arange(40) % 3 == 0
    scores = np.where(labels, 0.8, 0.2)
    scores[[1, 2]] = 0.9  # two false alarms
    out = plots.plot_prediction_grid(images, labels, scores, 0.5, tmp_path / "grid.png", 12)
    assert_png(out)
    chosen = plots.choose_grid_items(
        (scores >= 0.5) != labels, np.abs(scores - 0.5), max_items=12
    )
    assert chosen[:2].tolist() == [1, 2] and len(chosen) == 12 and len(set(chosen)) == 12


def test_plot_prediction_grid_float_images_and_fewer_images_than_labels(tmp_path):
    images = np.random.default_rng(2).normal(size=(5, 16, 16, 3)).astype(np.float32)
    out = plots.plot_prediction_grid(
        images, [0, 1, 1, 0, 1, 0, 1], np.linspace(0, 1, 7), 0.5, tmp_path / "g.png"
    )
    assert_png(out, min_size=(100, 100))
    with pytest.raises(EvaluationInputError, match="labels"):
        plots.plot_prediction_grid(images, [0, 1], [0.1, 0.9], 0.5, tmp_path / "bad.png")


@pytest.mark.slow
def test_plots_never_import_pyplot(tmp_path):
    code = (
        "import sys\n"
        "from fisuras.evaluate import plots\n"
        f"plots.plot_confusion({{'tn': 1, 'fp': 2, 'fn': 3, 'tp': 4}}, r'{tmp_path / 'c.png'}')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert (tmp_path / "c.png").is_file()
