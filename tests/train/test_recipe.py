"""The shipped models' recipes: they load, resolve to valid settings, and split by source photo."""

from __future__ import annotations

import shutil

import pytest

from fisuras.shipped import (
    RECIPES,
    ShippedModelError,
    installed_models,
    list_shipped,
    shipped_model_folder,
)
from fisuras.train.recipe import Recipe, recipe_manifest, source_photo


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_loads_and_resolves_to_valid_settings(name, tmp_path):
    recipe = Recipe.load(name)
    settings = recipe.resolved_settings(tmp_path)
    assert recipe.name == name and settings.run_name == name
    assert settings.weights == "none"  # shipped models train offline, from scratch
    assert recipe.train_sets and recipe.licence


def test_unknown_names_are_named_errors():
    with pytest.raises(ShippedModelError, match="no shipped model called 'crack-xl'"):
        shipped_model_folder("crack-xl")
    with pytest.raises(ShippedModelError, match="no recipe called 'crack-xl'"):
        Recipe.load("crack-xl")
    assert [line.split()[0] for line in list_shipped()] == sorted(RECIPES)


def test_crops_of_one_source_photo_never_land_on_both_sides(shared_data, tmp_path):
    # A zoo-like set: every CFD photo cut into three "crops" named <photo>-<n>.
    source = shared_data / "seg_cfd"
    zoo = tmp_path / "zoo"
    for folder in ("images", "masks"):
        (zoo / "train" / "seg_cfd" / folder).mkdir(parents=True)
    for image in sorted((source / "images").iterdir()):
        mask = next((source / "masks").glob(image.stem + ".*"))
        for n in (1, 2, 3):
            shutil.copy(image, zoo / "train/seg_cfd/images" / f"{image.stem}-{n}{image.suffix}")
            shutil.copy(mask, zoo / "train/seg_cfd/masks" / f"{image.stem}-{n}{mask.suffix}")
    recipe = Recipe(name="t", task="segment", summary="", train_sets=["train/seg_cfd"],
                    report_sets=[], licence="", validation_fraction=0.3)
    manifest = recipe_manifest(recipe, zoo, check=False)
    photos = {split: {source_photo(s.image) for s in manifest[split]} for split in ("train", "val")}
    assert photos["train"] and photos["val"]
    assert not photos["train"] & photos["val"]
    assert len(manifest["train"]) + len(manifest["val"]) == 3 * len(photos["train"] | photos["val"])


@pytest.mark.parametrize("name", installed_models())
def test_a_shipped_model_loads_by_name_in_safe_mode_and_matches_its_card(name, shared_data,
                                                                          tmp_path):
    import json

    from fisuras.infer.loading import load_model
    from fisuras.infer.predict import predict_paths
    from fisuras.shipped import MAX_MODEL_BYTES

    loaded = load_model(name)  # by name, no run folder: safe mode, card checked
    folder = shipped_model_folder(name)
    shipped = json.loads((folder / "shipped.json").read_text())
    assert loaded.card.task == shipped["task"] == Recipe.load(name).task
    assert (folder / "model.keras").stat().st_size == shipped["size_bytes"] <= MAX_MODEL_BYTES
    # a real cracked photo the model never saw (DeepCrack's sample, not in the zoo's METU set)
    photo = sorted((shared_data / "seg_deepcrack" / "images").iterdir())[0]
    kwargs = {"detector": loaded if loaded.card.task == "detect" else None,
              "segmenter": loaded if loaded.card.task == "segment" else None}
    report = predict_paths([str(photo)], out_dir=tmp_path / "out", **kwargs)
    assert report.n_failed == 0 and report.rows[0]["verdict"] in ("cracked", "uncracked")


# --- ONNX files of the shipped models (issue 16) ----------------------------------------------

def test_the_shipped_detector_carries_its_onnx_file():
    if "crack-det-s" not in installed_models():
        pytest.skip("crack-det-s is not installed")
    from fisuras.infer.runtime import onnx_file_ready
    from fisuras.shipped import MAX_MODEL_BYTES

    onnx = shipped_model_folder("crack-det-s") / "model.onnx"
    assert onnx.is_file() and onnx.stat().st_size <= MAX_MODEL_BYTES
    assert onnx_file_ready(onnx.with_suffix(".keras"))  # so predict's auto runtime takes it


@pytest.mark.parametrize("name", [name for name in installed_models()
                                  if (shipped_model_folder(name) / "model.onnx").is_file()])
def test_a_shipped_onnx_file_matches_its_keras_model_on_real_patches(name, shared_data):
    import numpy as np
    from PIL import Image

    from fisuras.infer.export import TOLERANCES
    from fisuras.infer.loading import load_model
    from fisuras.infer.runners import onnx_predictor

    pytest.importorskip("onnxruntime")
    loaded = load_model(name)
    size = loaded.card.image_size
    # METU patches (227 px) of both classes, scaled to the model's input size
    photos = [sorted((shared_data / "cls_metu" / label).iterdir())[:3]
              for label in ("Positive", "Negative")]
    patches = np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size)), np.float32)
                        for group in photos for p in group])
    keras_logits = np.asarray(loaded.model.predict_on_batch(patches), np.float32)
    onnx_logits = onnx_predictor(shipped_model_folder(name) / "model.onnx")(patches)
    atol, rtol = TOLERANCES["onnx"]
    assert onnx_logits.shape == keras_logits.shape
    assert np.abs(onnx_logits - keras_logits).max() <= atol + rtol * np.abs(keras_logits).max()
    if loaded.card.task == "detect":  # real patches, so both answers must differ: not a constant
        assert keras_logits.max() - keras_logits.min() > 1.0


def test_install_writes_model_onnx_beside_the_model_or_notes_why_not(tmp_path, monkeypatch):
    import sys

    import fisuras.shipped
    import fisuras.train.recipe
    from fisuras.infer.runtime import onnx_file_ready
    from fisuras.train.recipe import install_model
    from tests.infer.conftest import dark_classifier, save_run

    pytest.importorskip("tf2onnx")
    package = tmp_path / "package"  # the install target, not the real package
    monkeypatch.setattr(fisuras.shipped, "HERE", package)
    monkeypatch.setattr(fisuras.train.recipe, "HERE", package)
    run = save_run(tmp_path / "run", dark_classifier(32), "detect", 32)
    notes = []
    folder = install_model("crack-det-s", run, {"task": "detect"}, log=notes.append)
    assert folder == package / "models" / "crack-det-s"
    assert onnx_file_ready(folder / "model.keras")
    assert len(notes) == 1 and "model.onnx" in notes[0] and "max diff" in notes[0]

    # without tf2onnx: installed all the same, a note, and no ONNX file of the earlier model left
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    notes.clear()
    install_model("crack-det-s", run, {"task": "detect"}, log=notes.append)
    assert (folder / "model.keras").is_file() and not (folder / "model.onnx").exists()
    assert len(notes) == 1 and "no model.onnx shipped" in notes[0]
    assert "pip install fisuras[export]" in notes[0]


def test_models_lists_a_segmenter_per_report_set_beside_its_floor():
    from fisuras.shipped import headline_figures

    def entry(model_ods, floor_ods):
        return {"model": {"all": {"ods": model_ods}},
                "floor": {"method": "black top-hat", "figures": {"all": {"ods": floor_ods}}}}

    card = {"task": "segment", "report_sets": ["valid/seg_deepcrack", "valid/seg_gaps384"],
            "figures": {"valid/seg_deepcrack": entry(0.8612, 0.62),
                        "valid/seg_gaps384": entry(0.41, 0.17)}}
    assert headline_figures(card) == ["valid/seg_deepcrack ODS 0.861 (floor 0.620)",
                                      "valid/seg_gaps384 ODS 0.410 (floor 0.170)"]


def test_install_ships_the_weights_without_the_optimizer(tmp_path, monkeypatch):
    import json

    import keras
    import numpy as np

    import fisuras.shipped
    import fisuras.train.recipe
    from fisuras.models.saving import load_keras_model
    from fisuras.train.recipe import install_model
    from tests.infer.conftest import dark_classifier, save_run

    package = tmp_path / "package"
    monkeypatch.setattr(fisuras.shipped, "HERE", package)
    monkeypatch.setattr(fisuras.train.recipe, "HERE", package)
    monkeypatch.setattr(fisuras.train.recipe, "export_onnx", lambda name, log=None: None)
    model = dark_classifier(32)
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    model.fit(np.zeros((2, 32, 32, 3)), np.zeros((2, 1)), verbose=0)  # Adam has its moments now
    run = save_run(tmp_path / "run", model, "detect", 32)
    folder = install_model("crack-det-s", run, {"task": "detect"})
    installed, trained = folder / "model.keras", run / "model.keras"
    assert installed.stat().st_size < trained.stat().st_size
    assert json.loads((folder / "shipped.json").read_text())["size_bytes"] == \
        installed.stat().st_size
    assert getattr(load_keras_model(installed, compile=False), "optimizer", None) is None
    for got, expected in zip(load_keras_model(installed, compile=False).get_weights(),
                             model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
