"""Resume keeps the run's own settings and plan: safe changes applied and recorded, others
refused by name; a finished run trains nothing; Ctrl-C says how to resume."""

from __future__ import annotations

import keras
import pytest
from click.testing import CliRunner

from fisuras.cli import main
from fisuras.config import Settings, SettingsError
from fisuras.train import RunFolder, TrainingInterrupted, resumed_settings
from fisuras.train.resume import changes_on_resume
from tests.train.tiny import small_cnn_job


@pytest.fixture(scope="module")
def detect_data(tmp_path_factory):
    from fisuras.data import synthesize

    root = tmp_path_factory.mktemp("synth")
    synthesize(root, n_per_class_per_surface=6, n_uncracked_per_surface=6, n_seg=0,
               image_size=32, seed=3)
    return root / "sdnet"


def train_args(runs, *more):
    return ["train", "detect", "--backbone", "small_cnn", "--image-size", "32",
            "--weights", "none", "--frozen-epochs", "0", "--batch-size", "8",
            "--set", f"runs_dir={runs}", "--set", "detect.reference_batch_size=16", *more]


def test_changes_on_resume_apply_the_safe_ones_and_refuse_the_rest():
    saved = Settings().updated({"detect.batch_size": 16, "detect.epochs": 5})
    assert changes_on_resume(saved, saved.updated({"detect.epochs": 8}), "detect",
                             5) == ["detect.epochs: 5 -> 8"]
    with pytest.raises(SettingsError, match=r"cannot change detect.batch_size \(16 -> 32\)"):
        changes_on_resume(saved, saved.updated({"detect.batch_size": 32}), "detect", 2)
    with pytest.raises(SettingsError, match="already trained 4 epochs"):
        changes_on_resume(saved, saved.updated({"detect.epochs": 3}), "detect", 4)


@pytest.mark.slow
def test_resume_keeps_the_runs_settings_and_plan_and_applies_safe_changes(detect_data,
                                                                          tmp_path):
    runs = tmp_path / "runs"
    first = CliRunner().invoke(main, train_args(runs, str(detect_data), "--epochs", "2",
                                                "--name", "r"))
    assert first.exit_code == 0, first.output
    run = RunFolder(runs / "detect" / "r")
    plan_before = run.read_json("plan.json")
    assert plan_before["learning_rate_scale"] == pytest.approx(8 / 16)

    # a setting that cannot change mid-run is refused by name; nothing is touched
    refused = CliRunner().invoke(main, ["train", "detect", "--resume", str(run.path),
                                        "--batch-size", "4"])
    assert refused.exit_code == 1
    assert "cannot change detect.batch_size (8 -> 4)" in refused.output

    # a finished run: nothing to train, nothing evaluated again
    metrics_time = run.file("metrics.json").stat().st_mtime_ns
    again = CliRunner().invoke(main, ["train", "detect", "--resume", str(run.path)])
    assert again.exit_code == 0, again.output
    assert "has finished its 2 epochs: nothing to resume" in again.output
    assert run.file("metrics.json").stat().st_mtime_ns == metrics_time

    # more epochs and a lower rate: applied, recorded, plan kept (reference batch 16 still)
    more = CliRunner().invoke(main, ["train", "detect", "--resume", str(run.path), "--epochs",
                                     "3", "--set", "detect.learning_rate=0.0005"])
    assert more.exit_code == 0, more.output
    assert "resume changes detect.epochs: 2 -> 3" in more.output
    assert [row["epoch"] for row in run.read_history()] == [1, 2, 3]
    saved = run.read_yaml("settings.yaml")["detect"]
    assert saved["epochs"] == 3 and saved["learning_rate"] == 0.0005
    assert saved["reference_batch_size"] == 16 and saved["batch_size"] == 8
    assert run.read_json("plan.json") == plan_before
    assert any("detect.learning_rate: 0.001 -> 0.0005" in e for e in run.read_state().events)

    # DATA that is not the run's own is refused, not silently ignored
    other = CliRunner().invoke(main, ["train", "detect", str(tmp_path), "--resume",
                                      str(run.path), "--epochs", "4"])
    assert other.exit_code == 1 and "not the data of" in other.output


class InterruptAt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_ctrl_c_says_how_to_resume_and_the_resume_finishes(detect_data, tmp_path):
    from fisuras.train import train

    settings, plan = small_cnn_job(tmp_path / "runs", "c", epochs=2)
    with pytest.raises(TrainingInterrupted) as interrupted:
        train("detect", detect_data, settings, plan, verbose=0,
              extra_callbacks=[InterruptAt()], log=lambda m: None)
    run_path = tmp_path / "runs" / "detect" / "c"
    assert f"resume with: fisuras train detect --resume {run_path}" in str(interrupted.value)
    resumed = resumed_settings(run_path, "detect")
    result = train("detect", None, resumed, plan, resume=run_path, verbose=0,
                   log=lambda m: None)
    assert [row["epoch"] for row in result.history] == [1, 2] and result.state.finished


def test_the_cli_exits_130_with_the_resume_command_on_ctrl_c(detect_data, tmp_path,
                                                            monkeypatch):
    import fisuras.distribute

    def interrupted(task, data, settings, plan, **kwargs):
        raise TrainingInterrupted(tmp_path / "runs" / "detect" / "x", task)

    monkeypatch.setattr(fisuras.distribute, "train_distributed", interrupted)
    result = CliRunner().invoke(main, train_args(tmp_path / "runs", str(detect_data)))
    assert result.exit_code == 130
    assert "resume with: fisuras train detect --resume" in result.output


class FailInFinish(Exception):
    pass


@pytest.mark.slow
def test_a_run_killed_while_finishing_finishes_on_resume(detect_data, tmp_path, monkeypatch):
    from fisuras.train import finish, train

    settings, plan = small_cnn_job(tmp_path / "runs", "f", epochs=1)
    real_finish = finish.finish_run

    def killed(*args, **kwargs):
        raise FailInFinish  # stands for a kill during the evaluation at the end

    monkeypatch.setattr(finish, "finish_run", killed)
    with pytest.raises(FailInFinish):
        train("detect", detect_data, settings, plan, verbose=0, log=lambda m: None)
    run_path = tmp_path / "runs" / "detect" / "f"
    assert RunFolder(run_path).read_state().finished
    assert not (run_path / "metrics.json").exists()
    monkeypatch.setattr(finish, "finish_run", real_finish)
    said: list[str] = []
    result = train("detect", None, resumed_settings(run_path, "detect"), plan, resume=run_path,
                   verbose=0, log=said.append)
    assert any("all 1 epochs trained; finishing the run" in line for line in said)
    assert (run_path / "metrics.json").is_file() and (run_path / "model_card.json").is_file()
    assert result.metrics["test"] and [row["epoch"] for row in result.history] == [1]
