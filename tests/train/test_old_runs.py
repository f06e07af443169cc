"""A run folder written before the task sections and the epoch commit still evaluates, predicts
and resumes: flat settings.yaml, a state.json without the new fields, a Keras backup/ folder."""

from __future__ import annotations

import json

import pytest
import yaml

from fisuras.config import FLAT_KEYS, Settings, dotted
from fisuras.infer.loading import load_model
from fisuras.train import resumed_settings, train
from fisuras.train.finish import evaluate_run
from tests.train.tiny import small_cnn_job


def make_old(run_path) -> None:
    """Rewrite a run folder the way fisuras wrote it before: flat keys, old state fields."""
    nested = yaml.safe_load((run_path / "settings.yaml").read_text())
    settings = dotted(nested)
    flat = {k: v for k, v in nested.items() if k not in ("detect", "segment")}
    for old, new in FLAT_KEYS.items():
        flat[old] = settings[new[0]]
    (run_path / "settings.yaml").write_text(yaml.safe_dump(flat))
    state = json.loads((run_path / "state.json").read_text())
    for new_field in ("best_epoch", "checkpoint", "history"):
        state.pop(new_field)
    (run_path / "state.json").write_text(json.dumps(state))
    (run_path / "backup" / "train").mkdir(parents=True)
    (run_path / "backup" / "train" / "training_metadata.json").write_text('{"epoch": 1}')


@pytest.mark.slow
def test_an_old_run_folder_evaluates_predicts_and_resumes(shared_data, tmp_path):
    settings, plan = small_cnn_job(tmp_path / "runs", "old", epochs=2, image_size=64,
                                   batch_size=16)
    data = shared_data / "cls_metu"
    first = train("detect", data, settings, plan, verbose=0, log=lambda m: None)
    make_old(first.run.path)

    evaluated = evaluate_run(first.run.path, None, settings)
    assert evaluated["figures"]["overall"]["n"] == len(first.run.read_json("manifest.json")
                                                       ["splits"]["test"])
    assert load_model(first.run.path).card.task == "detect"

    resumed = resumed_settings(first.run.path, "detect", {"detect.epochs": 3})
    assert isinstance(resumed, Settings) and resumed.detect.backbone == "small_cnn"
    again = train("detect", None, resumed, plan, resume=first.run.path, verbose=0,
                  log=lambda m: None)
    assert [row["epoch"] for row in again.history] == [1, 2, 3]
    assert again.state.finished and again.run.read_state().epoch == 3
