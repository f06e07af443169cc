"""Segmentation through the same engine, on real CrackForest (CFD) photos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fisuras.config import load_settings
from fisuras.evaluate.run import predict_segmentation
from fisuras.evaluate.segmentation import iou_dice_from_counts, pixel_counts
from fisuras.hardware import HardwareFacts, make_plan
from fisuras.train import train

pytestmark = pytest.mark.slow


THRESHOLDS = np.linspace(0.05, 0.95, 19)


def best_dice_on(model, samples, tile: int) -> float:
    """Dice at the best single threshold over ``samples`` (as ODS, but on pixel overlap).

    A fixed 0.5 would judge a short run by its calibration: an untrained net and an underfit one
    may both call every pixel a crack there (Dice = 2p / (1 + p), about 0.03 on CFD).
    """
    totals = [{"tp": 0, "fp": 0, "fn": 0, "tn": 0} for _ in THRESHOLDS]
    for _sample, prob, true in predict_segmentation(model, samples, tile):
        for counts, threshold in zip(totals, THRESHOLDS, strict=True):
            for key, value in pixel_counts(prob >= threshold, true).items():
                counts[key] += value
    return max(iou_dice_from_counts(counts)["dice"] for counts in totals)


def test_short_training_on_real_cfd_learns(shared_data, tmp_path):


    settings = load_settings(overrides={
        "runs_dir": str(tmp_path / "runs"), "backbone_segment": "unet_light", "weights": "none",
        "image_size_segment": 64, "batch_size": 4, "epochs_segment": 6, "learning_rate": 3e-3,
        "deterministic": True, "cache": "memory", "run_name": "cfd"})
    plan = make_plan(HardwareFacts(cpu_cores=2, memory_mb=8000), settings)
    result = train("segment", shared_data / "seg_cfd", settings, plan, verbose=0)
    run = result.run
    # Dice on its training crops, as the engine measured it each epoch (batch statistics):
    # an untrained net scores about 0.03 here (every pixel called a crack). Inference-mode Dice
    # after so few steps still depends on BatchNorm's moving statistics, so it is not used.
    dice = [row["dice"] for row in result.history]
    assert max(dice[1:]) > 2 * dice[0] and dice[-1] > dice[0], dice
    metrics = json.loads(run.file("metrics.json").read_text())
    test = metrics["test"]["seg_cfd"]
    for key in ("iou", "dice", "tolerance_f1", "ods", "ois", "ap"):
        assert 0.0 <= test[key] <= 1.0
    assert test["protocol"]["tolerance_px"] == 2 and test["protocol"]["thresholds"] >= 99
    assert list(run.file("plots/overlays").glob("*.png"))
    assert np.isclose(json.loads(run.file("model_card.json").read_text())["threshold"],
                      metrics["threshold"])
