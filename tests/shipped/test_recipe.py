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
from fisuras.shipped.recipe import Recipe, recipe_manifest, source_photo


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
