"""The command line: parse and call (commands with their own modules are tested beside them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from fisuras import native_log
from fisuras.cli import main
from fisuras.hardware.facts import GpuFacts, HardwareFacts, described, gpu_from_text
from tests.conftest import project_root_copy

TURBO = {"ENABLE_MIXED_PRECISION": True, "ENABLE_XLA": True, "ENABLE_MEMORY_GROWTH": True,
         "MEMORY_LIMIT_MB": None}


@pytest.fixture(scope="module")
def knobs(tmp_path_factory) -> str:
    """A copy of config.py asking for the turbo at batch 48 (the user's own file is not read)."""
    root = project_root_copy(tmp_path_factory.mktemp("project"), BATCH_SIZE=48, GPU_CONFIG=TURBO)
    return str(root / "config.py")


@pytest.fixture
def show(knobs):
    return lambda *args: CliRunner().invoke(main, ["config", "show", "--knobs", knobs, *args])


def test_config_show_previews_the_plan_of_a_described_laptop(show):
    result = show("--gpu", "RTX 2050,8.6,4096", "--wsl2")
    assert result.exit_code == 0, result.output
    plan = result.output.split("# hardware plan", 1)[1]
    assert "described hardware: RTX 2050 (compute capability 8.6, 4096 MiB), WSL2" in plan
    lines = {line.split()[0]: line.split()[1] for line in plan.splitlines()[1:] if line.strip()}
    # the knob file asks for the turbo at batch 48, and this card honours all of it
    assert lines["device"] == "gpu" and lines["precision"] == "mixed_float16"
    assert lines["xla"] == "on" and lines["batch_size"] == "48"


def test_config_show_preview_follows_the_described_card_and_the_settings(show):
    gtx = show("--gpu", "NVIDIA GeForce GTX 1650,7.5,4096").output
    assert "precision            float32" in gtx and "GTX 16" in gtx
    two = show("--gpu", "A100,8.0,40960", "--gpu", "A100,8.0,40960", "--set", "devices=all",
               "--set", "gpu.precision=bfloat16").output
    assert "mixed_bfloat16" in two and "mirrored x2" in two


def test_a_badly_described_gpu_is_a_usage_error_naming_the_format(show):
    result = show("--gpu", "RTX 2050,8.6")
    assert result.exit_code == 2 and "'name,compute capability,MiB'" in result.output
    assert show("--wsl2").exit_code == 2


def test_described_facts_keep_this_machines_cpu():
    base = HardwareFacts(cpu_cores=6, os="windows", memory_mb=9000, source="nvidia-smi")
    facts = described(base, (gpu_from_text("RTX 2050, 8.6, 4096"),), wsl2=True)
    assert facts.gpus == (GpuFacts("RTX 2050", (8, 6), 4096),)
    assert (facts.cpu_cores, facts.memory_mb, facts.wsl2, facts.os, facts.source) == (
        6, 9000, True, "linux", "described")


def test_config_show_says_what_a_segmentation_epoch_is(show):
    default = show().output
    assert "# a segmentation epoch: every training photo about once at 256 px" in default
    assert "at least 25 steps" in default
    old = show("--set", "segment.crops_per_photo=one", "--set", "segment.min_steps_per_epoch=0",
               "--set", "scale_jitter_segment=[1, 1]").output
    assert old.rstrip().endswith("one random 256 px crop of every training photo")


# --- ./config.py is read only in the project root (issue 14) -------------------------------

def _plant_knob_file(folder, marker):
    """A config.py that leaves a marker file when executed, and asks for batch 40."""
    (folder / "config.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nBATCH_SIZE = 40\n")


def test_a_config_py_outside_the_project_root_is_not_executed(tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    _plant_knob_file(tmp_path, marker)  # e.g. a downloaded dataset folder
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("fisuras.hardware.configure", lambda *args, **kwargs: None)
    shown = CliRunner().invoke(main, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    assert "batch_size: 64" in shown.stdout and not marker.exists()
    assert shown.stderr.count("\n") == 1
    assert "./config.py was not read" in shown.stderr and "--knobs config.py" in shown.stderr
    # the same rule for every command: predict never runs it either
    monkeypatch.setattr("fisuras.shipped.DEFAULT_PREDICT_MODELS", {})  # no shipped default
    predicted = CliRunner().invoke(main, ["predict", "photo.jpg"])
    assert predicted.exit_code == 2 and "give --model" in predicted.output
    assert "./config.py was not read" in predicted.stderr and not marker.exists()
    # given explicitly, it is read (and so executed)
    knobs = CliRunner().invoke(main, ["config", "show", "--knobs", "config.py"])
    assert "batch_size: 40" in knobs.stdout and marker.exists()
    assert "not read" not in knobs.stderr


def test_the_project_root_config_py_is_read_without_knobs(tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    _plant_knob_file(tmp_path, marker)
    (tmp_path / "scripts" / "utils").mkdir(parents=True)
    (tmp_path / "scripts" / "utils" / "configurar_gpu.py").write_text("")
    monkeypatch.chdir(tmp_path)
    shown = CliRunner().invoke(main, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    assert "batch_size: 40" in shown.stdout and marker.exists() and shown.stderr == ""


def test_the_repository_root_is_a_project_root():
    from fisuras.cli import is_project_root
    from tests.conftest import REPO_ROOT

    assert is_project_root(REPO_ROOT) and not is_project_root(REPO_ROOT / "fisuras")


# --- predict's exit code (issue 14) -----------------------------------------------------------

def test_predict_fails_when_no_input_could_be_predicted(tmp_path, monkeypatch):
    from tests.infer.conftest import bright_photo, dark_segmenter, save_run, write_photo

    monkeypatch.setattr("fisuras.hardware.configure", lambda *args, **kwargs: None)
    run = save_run(tmp_path / "run", dark_segmenter(32), "segment", 32)
    (tmp_path / "notes.jpg").write_text("not a photo")
    out = str(tmp_path / "out")
    args = ["predict", "--model", str(run), "--out", out]

    failed = CliRunner().invoke(main, [*args, str(tmp_path / "notes.jpg"), "absent.jpg"])
    assert failed.exit_code == 1, failed.output
    assert "0 image(s) done, 2 skipped" in failed.output
    assert "no image could be predicted: all 2 input(s) failed" in failed.output
    assert "notes.jpg: cannot read image" in failed.output  # says why, naming the file

    photo = write_photo(tmp_path / "photo.png", bright_photo(32, 32))
    partial = CliRunner().invoke(main, [*args, str(photo), "absent.jpg"])
    assert partial.exit_code == 0, partial.output
    assert "1 image(s) done, 1 skipped" in partial.output
    assert "no image could be predicted" not in partial.output


# --- predict without a model: the shipped default (issue 16) ----------------------------------

def test_predict_without_a_model_uses_the_shipped_default(tmp_path, monkeypatch, shared_data):
    import json

    from fisuras.infer.runtime import onnx_file_ready
    from fisuras.shipped import installed_models, shipped_model_folder
    from tests.infer.conftest import dark_segmenter, save_run

    if "crack-det-s" not in installed_models():
        pytest.skip("crack-det-s is not installed")
    monkeypatch.setattr("fisuras.hardware.configure", lambda *args, **kwargs: None)
    # crack-seg-s (the real default) may not be trained yet: the installed detector stands in
    monkeypatch.setattr("fisuras.shipped.DEFAULT_PREDICT_MODELS", {"detect": "crack-det-s"})
    photo = sorted((shared_data / "cls_metu" / "Positive").iterdir())[0]
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", str(photo), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "no model given: using the shipped detector crack-det-s (fisuras models)" \
        in result.stderr
    report = json.loads((out / "report.json").read_text())
    folder = shipped_model_folder("crack-det-s")
    assert report["mode"] == "detect" and report["segmenter"] is None
    assert report["detector"]["path"] == str(folder / "model.keras")
    expected = "onnx" if onnx_file_ready(folder / "model.keras") else "keras"
    assert report["runtime"]["detector"]["used"] == expected
    assert report["images"][0]["verdict"] == "cracked"  # a METU crack photo

    # a model given: no default, no such line
    run = save_run(tmp_path / "run", dark_segmenter(32), "segment", 32)
    given = CliRunner().invoke(main, ["predict", str(photo), "--model", str(run), "--out",
                                      str(tmp_path / "given"), "--runtime", "keras"])
    assert given.exit_code == 0, given.output
    assert "no model given" not in given.output
    given_report = json.loads((tmp_path / "given" / "report.json").read_text())
    assert given_report["mode"] == "segment"
    assert given_report["runtime"]["segmenter"]["used"] == "keras"


def test_predict_without_a_model_says_when_the_default_is_not_installed(tmp_path, monkeypatch):
    import fisuras.shipped

    monkeypatch.setattr("fisuras.hardware.configure", lambda *args, **kwargs: None)
    monkeypatch.setattr(fisuras.shipped, "DEFAULT_PREDICT_MODELS", {"segment": "crack-seg-s"})
    monkeypatch.setattr(fisuras.shipped, "HERE", tmp_path)  # an empty models folder
    result = CliRunner().invoke(main, ["predict", "photo.jpg", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("Error: no model given and the shipped segmenter crack-seg-s is "
                               "not installed (")
    assert lines[0].endswith("): give --model RUN or train it with "
                             "`fisuras models train crack-seg-s --zoo ../shared/zoo`")
    assert not (tmp_path / "out").exists()


def test_data_inspect_lists_undecodable_files_and_goes_on(shared_data, tmp_path):
    import shutil

    root = shutil.copytree(shared_data / "seg_deepcrack", tmp_path / "seg_deepcrack")
    photo = sorted((root / "images").iterdir())[0]
    photo.write_bytes(b"not a photo")
    result = CliRunner().invoke(main, ["data", "inspect", str(root),
                                       "--out", str(tmp_path / "grid.png")])
    assert result.exit_code == 0, result.output
    assert f"not_image       images/{photo.name}: content is not an image" in result.output
    assert "seg_deepcrack: segment, 30 images" in result.output
    assert result.output.count("sample grid:") == 1 and (tmp_path / "grid.png").is_file()


# --- TensorFlow's native chatter (issue 14) ---------------------------------------------------

def test_every_command_defaults_tensorflows_log_level_and_keeps_the_users(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert CliRunner().invoke(main, ["config", "show"]).exit_code == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"  # set before any command imports TF
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert CliRunner().invoke(main, ["config", "show"]).exit_code == 0
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert not native_log._installed  # in-process runs (tests) never get their stderr filtered


@pytest.mark.slow
def test_doctor_says_no_gpu_in_its_own_words_without_tensorflows_lines():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "fisuras", "doctor"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert "[PASS] tensorflow/keras" in result.stdout, result.stderr
    assert "absl::InitializeLog" not in result.stderr and "port.cc" not in result.stderr
    if "gpus: no GPU visible" in result.stdout:  # a machine without a GPU, like CI
        assert "cuInit" not in result.stderr
