"""The demo's result table: each segmentation row is followed by the floor's on the same photos."""

from __future__ import annotations

import pytest

from fisuras.demo import _rows


def test_segmentation_rows_carry_the_floor_beside_the_model():
    model = {"seg_cfd": {"n_images": 5, "iou": 0.4, "tolerance_f1": 0.7, "ods": 0.75},
             "all_groups_pooled": {"n_images": 5, "iou": 0.4, "tolerance_f1": 0.7, "ods": 0.75}}
    floor = {"figures": {"seg_cfd": {"n_images": 5, "iou": 0.1, "tolerance_f1": 0.2,
                                     "ods": 0.4}}}
    rows = _rows("segment", "real: seg_cfd", model, floor)
    assert [(row["task"], row["ods"], row["n"]) for row in rows] == [
        ("segment", 0.75, 5), ("floor (no learning)", 0.4, 5)]
    assert len(_rows("segment", "real: seg_cfd", model)) == 1  # no floor recorded: model only


def test_the_demo_ends_with_the_shipped_models_on_a_real_photo(shared_data, tmp_path):
    import json

    from fisuras.demo import predict_with_shipped
    from fisuras.shipped import installed_models

    if not installed_models():
        pytest.skip("no shipped model is installed in this checkout")
    line = predict_with_shipped(shared_data, tmp_path / "out", log=lambda message: None)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    row = report["images"][0]
    assert row["status"] == "ok" and report["detector"]["path"].endswith("model.keras")
    assert f": {row['verdict']};" in line
    assert str(tmp_path / "out") in line
