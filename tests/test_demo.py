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


def test_the_demo_ends_with_the_shipped_models_on_a_real_photo(shared_data, tmp_path,
                                                                monkeypatch):
    import json

    import fisuras.shipped
    from fisuras.demo import predict_with_shipped
    from fisuras.shipped import installed_models

    if "crack-seg-s" not in installed_models():
        # the real default is not trained yet in this checkout: the installed detector stands in
        if not installed_models():
            pytest.skip("no shipped model is installed in this checkout")
        monkeypatch.setattr(fisuras.shipped, "DEFAULT_PREDICT_MODELS",
                            {"detect": installed_models()[0]})
    said = []
    line = predict_with_shipped(shared_data, tmp_path / "out", log=said.append)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    row = report["images"][0]
    assert row["status"] == "ok" and "seg_cfd" in row["input"]  # a dataset never trained on
    assert said and said[0].startswith("no model given: using the shipped")
    written = [tmp_path / "out" / row[key] for key in ("overlay_png", "mask_png", "heatmap_png")
               if row.get(key)]
    assert written and all(path.is_file() and str(path) in line for path in written)
    if "crack_count" in row:  # a segmenter ran: its geometry is in the line and the report
        assert f"{row['crack_count']} crack(s)" in line and "geometry" in row
    assert str(report_path := tmp_path / "out" / "report.json") in line and report_path.is_file()


def test_the_demo_says_so_when_the_default_models_are_not_installed(shared_data, tmp_path,
                                                                     monkeypatch):
    import fisuras.shipped
    from fisuras.demo import predict_with_shipped

    monkeypatch.setattr(fisuras.shipped, "HERE", tmp_path)  # nothing installed here
    said = []
    assert predict_with_shipped(shared_data, tmp_path / "out", log=said.append) is None
    assert "fisuras models train crack-seg-s" in said[0]
