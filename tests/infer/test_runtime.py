"""Predict's runtime choice: Keras or ONNX Runtime on the model.onnx beside the model (issue 16)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from fisuras.infer.export import TOLERANCES
from fisuras.infer.loading import load_model
from fisuras.infer.predict import PredictOptionError, predict_paths
from fisuras.infer.runners import ExportDependencyError, keras_predictor, onnx_predictor
from fisuras.infer.runtime import (
    choose_runtime,
    export_onnx,
    onnx_file_ready,
    onnxruntime_available,
    prepare_runtime,
)
from fisuras.models.card import ModelCard

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")


# --- the rule ---------------------------------------------------------------------------------

@pytest.mark.parametrize("available", [True, False])
@pytest.mark.parametrize("ready", [True, False])
def test_keras_is_always_keras(available, ready):
    assert choose_runtime("keras", available, ready) == ("keras", "asked for Keras")


@pytest.mark.parametrize("ready", [True, False])
def test_onnx_runs_onnx_and_says_whether_it_exports(ready):
    runtime, reason = choose_runtime("onnx", True, ready)
    assert runtime == "onnx"
    assert ("exported" in reason) is not ready


@pytest.mark.parametrize("ready", [True, False])
def test_onnx_without_onnxruntime_says_how_to_install_it(ready):
    with pytest.raises(ExportDependencyError, match=re.escape("pip install fisuras[export]")):
        choose_runtime("onnx", False, ready)


@pytest.mark.parametrize(
    ("available", "ready", "expected", "why"),
    [
        (True, True, "onnx", "up to date"),
        (True, False, "keras", "no up-to-date model.onnx"),
        (False, True, "keras", "onnxruntime is not installed"),
        (False, False, "keras", "onnxruntime is not installed"),
    ],
)
def test_auto_takes_onnx_only_with_onnxruntime_and_a_ready_file(available, ready, expected, why):
    runtime, reason = choose_runtime("auto", available, ready)
    assert runtime == expected and reason.startswith("auto: ") and why in reason


def test_the_documented_examples_hold():
    import doctest

    import fisuras.infer.runtime

    result = doctest.testmod(fisuras.infer.runtime)
    assert result.attempted >= 4 and result.failed == 0


def test_an_unknown_runtime_is_refused(tmp_path, runs):
    with pytest.raises(ValueError, match="tflite"):
        choose_runtime("tflite", True, True)
    with pytest.raises(PredictOptionError, match="runtime must be one of auto, keras, onnx"):
        predict_paths([], detector=None, segmenter=load_model(runs["dark_segmenter"]),
                      out_dir=tmp_path / "out", runtime="tflite")
    assert not (tmp_path / "out").exists()


# --- the file beside the model ----------------------------------------------------------------

def copy_run(source, target):
    """A private copy of a shared run folder: exports write into it."""
    shutil.copytree(source, target)
    return target


def make_stale(run):
    """model.keras written again, as by training the run again: other bytes than the ones
    model.onnx was exported from (and an ONNX file dated after it: times do not count)."""
    from fisuras.models.saving import load_keras_model

    load_keras_model(run / "model.keras", compile=False).save(run / "model.keras")
    later = (run / "model.keras").stat().st_mtime_ns + 10**9
    os.utime(run / "model.onnx", ns=(later, later))


@pytest.fixture(scope="module")
def onnx_runs(runs, tmp_path_factory):
    """The U-Net and small_cnn runs copied, each with its model.onnx exported beside it."""
    root = tmp_path_factory.mktemp("onnx_runs")
    copies = {}
    for name in ("segmenter", "classifier"):
        copies[name] = copy_run(runs[name], root / name)
        export_onnx(copies[name] / "model.keras")
    return copies


def test_ready_means_present_and_exported_from_these_bytes(tmp_path, onnx_runs):
    run = copy_run(onnx_runs["segmenter"], tmp_path / "run")  # copytree keeps the times
    assert onnx_file_ready(run / "model.keras")
    make_stale(run)
    assert not onnx_file_ready(run / "model.keras")
    (run / "model.onnx").unlink()
    assert not onnx_file_ready(run / "model.keras")


def test_a_copy_with_any_file_times_stays_ready(tmp_path, onnx_runs):
    run = copy_run(onnx_runs["segmenter"], tmp_path / "run")
    os.utime(run / "model.onnx", ns=(0, 0))  # older than model.keras, as a checkout may leave it
    assert onnx_file_ready(run / "model.keras")
    (run / "model.onnx.json").write_text("{torn", encoding="utf-8")
    assert not onnx_file_ready(run / "model.keras")


def test_export_onnx_matches_keras_and_leaves_the_card_alone(onnx_runs, runs):
    card = (runs["segmenter"] / "model_card.json").read_bytes()
    assert (onnx_runs["segmenter"] / "model_card.json").read_bytes() == card
    leftovers = [p.name for p in onnx_runs["segmenter"].iterdir()
                 if p.name not in ("model.keras", "model.onnx", "model.onnx.json",
                                   "model_card.json")]
    assert leftovers == []  # the temporary export folder is gone


# --- predict_paths with each runtime ----------------------------------------------------------

def settings_of(report) -> dict:
    return json.loads(report.json_path.read_text())


def test_onnx_and_keras_give_the_same_mask_on_a_real_photo(tmp_path, onnx_runs, cfd_photos):
    from fisuras.data.tiles import TILE_ALIGN
    from fisuras.infer.tiling import predict_tiled

    run = copy_run(onnx_runs["segmenter"], tmp_path / "run")  # model.onnx stays up to date
    image = np.asarray(Image.open(cfd_photos[0]).convert("RGB"), np.float32)
    keras_model = load_model(run).model
    probability = {
        "keras": predict_tiled(keras_predictor(keras_model), image, 64, align=TILE_ALIGN),
        "onnx": predict_tiled(onnx_predictor(run / "model.onnx"), image, 64, align=TILE_ALIGN),
    }
    # Random weights put every pixel on one side of 0.5; the median as the card's threshold
    # makes half the photo crack, so the masks have an edge to disagree on.
    threshold = float(np.median(probability["keras"]))
    replace(ModelCard.load(run), threshold=threshold).save(run)
    segmenter = load_model(run)

    reports = {runtime: predict_paths([str(cfd_photos[0])], detector=None, segmenter=segmenter,
                                      out_dir=tmp_path / runtime, runtime=runtime, progress=False)
               for runtime in ("keras", "onnx")}  # fmt: skip
    assert settings_of(reports["onnx"])["runtime"]["segmenter"]["used"] == "onnx"
    assert settings_of(reports["keras"])["runtime"]["segmenter"]["used"] == "keras"
    masks = {runtime: np.asarray(Image.open(report.out_dir / report.rows[0]["mask_png"])) == 255
             for runtime, report in reports.items()}  # fmt: skip
    np.testing.assert_array_equal(masks["keras"], probability["keras"] >= threshold)
    assert 0.3 < masks["keras"].mean() < 0.7

    atol, rtol = TOLERANCES["onnx"]
    difference = np.abs(probability["onnx"] - probability["keras"])
    # probabilities: the sigmoid's slope is at most 1/4, so the logit tolerance bounds them
    assert difference.max() <= atol + rtol
    # a pixel may only flip where Keras itself is within that difference of the threshold
    near_threshold = np.abs(probability["keras"] - threshold) <= difference.max()
    assert not np.any((masks["onnx"] != masks["keras"]) & ~near_threshold)
    assert reports["onnx"].rows[0]["verdict"] == reports["keras"].rows[0]["verdict"]


def test_onnx_and_keras_give_the_same_heat_map(tmp_path, onnx_runs, cfd_photos):
    detector = load_model(onnx_runs["classifier"])
    photo = [str(cfd_photos[1])]
    rows = {runtime: predict_paths(photo, detector=detector, segmenter=None,
                                   out_dir=tmp_path / runtime, runtime=runtime,
                                   progress=False).rows[0]
            for runtime in ("keras", "onnx")}  # fmt: skip
    heat = {runtime: np.array(row["heat_map"]) for runtime, row in rows.items()}
    atol, rtol = TOLERANCES["onnx"]
    assert heat["keras"].size > 1
    assert np.abs(heat["onnx"] - heat["keras"]).max() <= atol + rtol + 1e-4  # + JSON rounding
    threshold = detector.card.threshold
    if np.abs(heat["keras"] - threshold).min() > atol + rtol + 1e-4:  # no patch on the edge
        assert rows["onnx"]["verdict"] == rows["keras"]["verdict"]
        assert rows["onnx"]["cracked_patches"] == rows["keras"]["cracked_patches"]


def test_auto_picks_onnx_only_when_the_file_is_up_to_date_and_never_writes(tmp_path, onnx_runs,
                                                                           cfd_photos):
    run = copy_run(onnx_runs["segmenter"], tmp_path / "run")
    photo = [str(cfd_photos[0])]

    def auto(out):
        report = predict_paths(photo, detector=None, segmenter=load_model(run),
                               out_dir=tmp_path / out, progress=False)  # runtime="auto"
        return settings_of(report)["runtime"]

    present = auto("present")
    assert present["requested"] == "auto" and present["segmenter"]["used"] == "onnx"
    assert present["segmenter"]["onnx_file"] == str(run / "model.onnx")

    make_stale(run)
    onnx_bytes, onnx_time = (run / "model.onnx").read_bytes(), (run / "model.onnx").stat()
    stale = auto("stale")["segmenter"]
    assert stale["used"] == "keras" and "no up-to-date model.onnx" in stale["reason"]
    assert (run / "model.onnx").read_bytes() == onnx_bytes  # not exported again
    assert (run / "model.onnx").stat().st_mtime_ns == onnx_time.st_mtime_ns

    (run / "model.onnx").unlink()
    assert auto("missing")["segmenter"]["used"] == "keras"
    assert not (run / "model.onnx").exists()  # auto never writes into the run folder


def test_onnx_exports_when_missing_and_says_so(tmp_path, runs, cfd_photos, capsys):
    run = copy_run(runs["dark_segmenter"], tmp_path / "run")
    report = predict_paths([str(cfd_photos[0])], detector=None, segmenter=load_model(run),
                           out_dir=tmp_path / "out", runtime="onnx", progress=False)
    assert report.n_ok == 1 and onnx_file_ready(run / "model.keras")
    said = capsys.readouterr().err
    assert re.search(rf"exported {re.escape(str(run / 'model.onnx'))} for ONNX Runtime "
                     r"\(checked against Keras: max diff [0-9.e+-]+\)", said), said
    runtime = settings_of(report)["runtime"]["segmenter"]
    assert runtime["used"] == "onnx" and "checked against Keras" in runtime["reason"]

    # a stale file is replaced the same way
    make_stale(run)
    prepare_runtime(load_model(run), "onnx", log=lambda line: None)
    assert onnx_file_ready(run / "model.keras")


def test_onnxruntime_missing(tmp_path, runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    assert not onnxruntime_available()
    segmenter = load_model(runs["dark_segmenter"])
    with pytest.raises(ExportDependencyError, match=re.escape("pip install fisuras[export]")):
        predict_paths([], detector=None, segmenter=segmenter, out_dir=tmp_path / "out",
                      runtime="onnx")
    assert not (tmp_path / "out").exists()  # refused before anything was written
    # auto falls back to Keras and says why
    report = predict_paths([], detector=None, segmenter=segmenter, out_dir=tmp_path / "auto")
    runtime = settings_of(report)["runtime"]["segmenter"]
    assert runtime == {"used": "keras", "reason": "auto: onnxruntime is not installed "
                                                  "(pip install fisuras[export])"}
