"""The shipped models' recipes: they load, resolve to valid settings, and split by source photo."""

from __future__ import annotations

import shutil

import pytest

from fisuras.shipped import RECIPES, ShippedModelError, list_shipped, shipped_model_file
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
        shipped_model_file("crack-xl")
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
