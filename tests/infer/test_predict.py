"""predict_paths end to end: real photos, bad inputs, detector, segmenter, cascade, safe outputs."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fisuras.data.tiles import TILE_ALIGN
from fisuras.infer.loading import WrongTaskError, load_model
from fisuras.infer.outputs import OutputPathError, inside, safe_name
from fisuras.infer.predict import predict_paths
from fisuras.infer.runners import keras_predictor
from fisuras.infer.tiling import predict_tiled, tile_grid

from .conftest import bright_photo, write_photo


@pytest.fixture(scope="module")
def models(runs):
    return {name: load_model(path) for name, path in runs.items()}


def bad_inputs(folder):
    """A text file named .jpg, a truncated JPEG and a missing file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.jpg").write_text("this is not a photo")
    noise = np.random.default_rng(0).uniform(0, 255, (200, 300, 3))
    whole = write_photo(folder / "whole.jpg", noise)
    (folder / "truncated.jpg").write_bytes(whole.read_bytes()[:1500])
    whole.unlink()
    return [folder / "notes.jpg", folder / "truncated.jpg", folder / "absent.jpg"]


def test_segmenter_on_real_photos_skips_bad_inputs(tmp_path, models, cfd_photos):
    photos = cfd_photos[:2]
    bad = bad_inputs(tmp_path / "bad")
    out = tmp_path / "out"
    report = predict_paths(
        [str(photos[0]), str(bad[0]), str(bad[1]), str(photos[1]), str(bad[2])],
        detector=None, segmenter=models["segmenter"], out_dir=out, progress=False,
    )  # fmt: skip
    assert report.n_ok == 2 and report.n_failed == 3
    errors = {row["input"]: row["error"] for row in report.rows if row["status"] == "error"}
    assert set(errors) == {str(p) for p in bad}
    assert all(os.path.basename(name) in message for name, message in errors.items())

    for row in [r for r in report.rows if r["status"] == "ok"]:
        mask = np.asarray(Image.open(out / row["mask_png"]))
        assert mask.shape == (320, 480) and set(np.unique(mask)) <= {0, 255}
        assert np.asarray(Image.open(out / row["overlay_png"])).shape == (320, 480, 3)
        assert row["tiles_total"] == row["tiles_segmented"] == len(
            tile_grid(320, 480, 64, 0.25, align=TILE_ALIGN)
        )
        assert row["crack_count"] == row["geometry"]["totals"]["count"]
    # the mask is the tiled prediction thresholded at the card's threshold, upright, unshifted
    image = np.asarray(Image.open(photos[0]).convert("RGB"), np.float32)
    predict = keras_predictor(models["segmenter"].model)
    expected = predict_tiled(predict, image, 64, align=TILE_ALIGN) >= 0.5
    first_row = next(r for r in report.rows if r["input"] == str(photos[0]))
    first_mask = np.asarray(Image.open(out / first_row["mask_png"])) == 255
    np.testing.assert_array_equal(first_mask, expected)

    with open(report.csv_path, newline="") as handle:
        assert [r["status"] for r in csv.DictReader(handle)] == [r["status"] for r in report.rows]
    document = json.loads(report.json_path.read_text())
    assert document["complete"] and document["mode"] == "segment"
    assert len(document["images"]) == 5


def test_crack_geometry_in_pixels_and_millimetres(tmp_path, models):
    photo = bright_photo(128, 256)
    photo[60:64, 40:200] = 0.0  # a dark crack 160 px long, 4 px wide
    inputs = [write_photo(tmp_path / "cracked.png", photo),
              write_photo(tmp_path / "clean.png", bright_photo(128, 256))]  # fmt: skip
    report = predict_paths(
        [str(p) for p in inputs], detector=None, segmenter=models["dark_segmenter"],
        out_dir=tmp_path / "out", mm_per_px=0.1, max_width_mm=0.3, progress=False,
    )  # fmt: skip
    cracked, clean = report.rows
    assert cracked["verdict"] == "cracked" and cracked["crack_count"] == 1
    assert cracked["total_length_px"] == pytest.approx(160, rel=0.1)
    assert cracked["total_length_mm"] == pytest.approx(16, rel=0.1)
    assert cracked["max_width_mm"] == pytest.approx(0.4, abs=0.1) and cracked["wide_cracks"] == 1
    assert clean["verdict"] == "uncracked" and clean["crack_count"] == 0


def test_detector_heat_map_verdict_and_cracked_patches(tmp_path, models):
    photo = bright_photo(200, 300)
    photo[150:170, 250:270] = 0.0
    write_photo(tmp_path / "stain.png", photo)
    write_photo(tmp_path / "plain.png", bright_photo(200, 300))
    write_photo(tmp_path / "exact.png", bright_photo(64, 64))  # the model's own size
    out = tmp_path / "out"
    report = predict_paths([str(tmp_path)], detector=models["dark_classifier"], segmenter=None,
                           out_dir=out, progress=False)  # fmt: skip
    rows = {os.path.basename(row["input"]): row for row in report.rows}
    stain, plain, exact = rows["stain.png"], rows["plain.png"], rows["exact.png"]
    assert stain["verdict"] == "cracked" and plain["verdict"] == "uncracked"
    assert stain["patches"] == plain["patches"] == 4 * 6  # 48 px stride over 200 x 300
    assert exact["patches"] == 1
    assert 0 < stain["cracked_patches"] < stain["patches"]
    for patch in stain["cracked_patch_boxes"]:
        y0, x0, y1, x1 = patch["box"]
        assert y0 < 170 and y1 > 150 and x0 < 270 and x1 > 250
    assert Image.open(out / stain["heatmap_png"]).size == (300, 200)
    assert "mask_png" not in stain


def test_cascade_segments_only_where_the_detector_sees_cracks(tmp_path, models, cfd_photos):
    photo = bright_photo(256, 320)
    photo[32:40, 20:60] = 0.0  # fills whole 8 px blocks, which the dark classifier looks at
    cracked = write_photo(tmp_path / "in" / "corner.png", photo)
    plain = write_photo(tmp_path / "in" / "plain.png", bright_photo(256, 320))
    report = predict_paths(
        [str(cracked), str(plain)], detector=models["dark_classifier"],
        segmenter=models["dark_segmenter"], out_dir=tmp_path / "out", progress=False,
    )  # fmt: skip
    corner, clean = report.rows
    assert 0 < corner["tiles_segmented"] < corner["tiles_total"]
    assert corner["crack_count"] == 1 and corner["verdict"] == "cracked"
    assert clean["tiles_segmented"] == 0 and clean["crack_pixels"] == 0
    assert json.loads(report.json_path.read_text())["mode"] == "cascade"

    # real photo, random real architectures: runs end to end and reports the tile counts
    real = predict_paths([str(cfd_photos[0])], detector=models["classifier"],
                         segmenter=models["segmenter"], out_dir=tmp_path / "real",
                         progress=False).rows[0]  # fmt: skip
    assert real["status"] == "ok" and 0 <= real["tiles_segmented"] <= real["tiles_total"]


def test_outputs_never_escape_the_output_folder(tmp_path, models):
    inputs = tmp_path / "in"
    names = ["..\\..\\evil.png", "...png", "a/x.png", "b/x.png", "A/X.png"]  # stems "..", ...
    files = [str(write_photo(inputs / name, bright_photo(64, 64))) for name in names]
    out = tmp_path / "deep" / "out"
    before = {p for p in tmp_path.rglob("*")}
    report = predict_paths(files, detector=None, segmenter=models["dark_segmenter"],
                           out_dir=out, progress=False)  # fmt: skip
    assert report.n_ok == len(names)
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p in (out, out.parent) or out in p.parents for p in created)
    masks = sorted(p.name for p in out.glob("*_mask.png"))
    assert len(masks) == len(names)  # x, X and x collide, and get distinct names
    assert all(".." not in name and "\\" not in name for name in masks)


def test_output_path_checks():
    assert "/" not in safe_name("../../evil") and not safe_name("../../evil").startswith(".")
    with pytest.raises(OutputPathError):
        inside(Path("/tmp/out"), "../evil.png")


def test_symlink_planted_in_output_folder_is_not_followed(tmp_path, models):
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo_mask.png").symlink_to(outside)
    photo = write_photo(tmp_path / "photo.png", bright_photo(64, 64))
    with pytest.raises(OutputPathError):
        predict_paths([str(photo)], detector=None, segmenter=models["dark_segmenter"],
                      out_dir=out, progress=False)  # fmt: skip
    assert outside.read_bytes() == b"keep me"


def test_models_of_the_wrong_task_are_refused(tmp_path, models):
    with pytest.raises(WrongTaskError, match="segmentation"):
        predict_paths([str(tmp_path)], detector=models["segmenter"], segmenter=None,
                      out_dir=tmp_path / "out", progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="detector, a segmenter"):
        predict_paths([str(tmp_path)], detector=None, segmenter=None, out_dir=tmp_path / "out")
    with pytest.raises(ValueError, match="overlap"):
        predict_paths([str(tmp_path)], detector=None, segmenter=models["dark_segmenter"],
                      out_dir=tmp_path / "out", tile_overlap=1.0)  # fmt: skip
    assert not (tmp_path / "out").exists()  # refused before writing anything


def test_progress_in_a_log_is_one_plain_line_per_photo(tmp_path, models, capsys):
    # issue 14: Keras's bar redraws with carriage returns, one unreadable line in a log file
    photos = [write_photo(tmp_path / f"p{i}.png", bright_photo(64, 64)) for i in range(2)]
    bad = bad_inputs(tmp_path / "bad")[0]
    predict_paths([str(photos[0]), str(bad), str(photos[1])], detector=None,
                  segmenter=models["dark_segmenter"], out_dir=tmp_path / "out")  # fmt: skip
    printed = capsys.readouterr().out  # captured: not a terminal
    assert "\r" not in printed and "\b" not in printed
    lines = printed.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"predict {i}/3: ") for i, line in
                                   enumerate(lines, 1))  # fmt: skip
    assert str(photos[0]) in lines[0] and lines[0].endswith(" s)")
    assert "skipped" in lines[1] and "notes.jpg" in lines[1]
