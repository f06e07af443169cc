"""Loading refuses anything that is not a fisuras model of the right task, with a clear message."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from fisuras.infer.loading import NotAFisurasModelError, WrongTaskError, load_model
from fisuras.models.card import ModelCard

from .conftest import keras, save_run


def test_run_folder_and_its_model_file_both_load(runs):
    by_folder = load_model(runs["segmenter"], expect_task="segment")
    by_file = load_model(runs["segmenter"] / "model.keras")
    assert by_folder.card.task == by_file.card.task == "segment"
    assert by_folder.image_size == 64
    batch = np.zeros((1, 64, 64, 3), np.float32)
    np.testing.assert_array_equal(
        by_folder.model.predict_on_batch(batch), by_file.model.predict_on_batch(batch)
    )


def test_other_task_gets_a_clear_error(runs):
    with pytest.raises(WrongTaskError) as caught:
        load_model(runs["segmenter"], expect_task="detect")
    message = str(caught.value)
    assert str(runs["segmenter"]) in message
    assert "is a segmentation model" in message and "--detector" in message
    with pytest.raises(WrongTaskError, match="detection"):
        load_model(runs["classifier"], expect_task="segment")


@pytest.mark.parametrize("kind", ["no card", "garbage bytes", "text file", "missing", "h5 name"])
def test_non_fisuras_files_are_refused_naming_the_path(tmp_path, runs, kind):
    if kind == "no card":
        path = tmp_path / "run"
        path.mkdir()
        shutil.copy(runs["segmenter"] / "model.keras", path / "model.keras")
    elif kind == "garbage bytes":
        path = tmp_path / "run"
        path.mkdir()
        ModelCard(task="segment", backbone="x", image_size=64).save(path)
        (path / "model.keras").write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "text file":
        path = tmp_path / "notes.keras"
        path.write_text("not a model")
    elif kind == "missing":
        path = tmp_path / "nowhere"
    else:
        path = tmp_path / "model.h5"
        path.write_bytes(b"\x89HDF")
    with pytest.raises(NotAFisurasModelError) as caught:
        load_model(path)
    assert str(path) in str(caught.value) or str(path.parent) in str(caught.value)


def test_code_in_a_model_is_refused_by_safe_mode(tmp_path):
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Lambda(lambda x: x[..., :1] * 2.0)(inputs)
    folder = save_run(tmp_path / "lambda", keras.Model(inputs, outputs), "segment", 32)
    with pytest.raises(NotAFisurasModelError, match="safe mode"):
        load_model(folder)


def test_card_and_network_must_agree_on_the_task(tmp_path, runs):
    folder = tmp_path / "mislabelled"
    shutil.copytree(runs["segmenter"], folder)
    ModelCard(task="detect", backbone="test", image_size=64).save(folder)
    with pytest.raises(NotAFisurasModelError, match="outputs"):
        load_model(folder, expect_task="detect")


def test_card_and_network_must_agree_on_the_image_size(tmp_path, runs):
    folder = tmp_path / "resized"
    shutil.copytree(runs["classifier"], folder)
    ModelCard(task="detect", backbone="test", image_size=128).save(folder)
    with pytest.raises(NotAFisurasModelError, match="128 px"):
        load_model(folder)
