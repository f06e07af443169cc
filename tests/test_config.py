"""Settings: defaults, precedence of the four sources, and each validation error."""

from __future__ import annotations

import importlib
import re
import sys
import textwrap

import pytest

from fisuras.config import (
    SEED_GPU_KNOBS,
    SEED_KNOBS,
    Settings,
    SettingsError,
    load_settings,
)
from tests.conftest import REPO_ROOT, other_than, project_root_copy


def write_knobs(tmp_path, body: str):
    path = tmp_path / "config.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_defaults_are_the_seed_turbo_setup():
    s = Settings()
    assert (s.detect.batch_size, s.detect.epochs, s.segment.epochs) == (64, 30, 35)
    assert (s.detect.frozen_epochs, s.detect.fine_tune_epochs) == (8, 22)
    assert s.gpu.enable_mixed_precision and s.gpu.enable_xla and s.gpu.enable_memory_growth
    assert s.gpu.memory_limit_mb is None


def setting(settings: Settings, key: str):
    """The value at a dotted Settings key (``SEED_KNOBS`` says where each knob lands)."""
    value = settings.model_dump()
    for part in key.split("."):
        value = value[part]
    return value


def test_editing_each_knob_of_config_py_changes_its_setting_and_nothing_else(tmp_path):
    # config.py is the user's: whatever it holds now, editing a knob must move its setting.
    shipped = load_settings(project_root_copy(tmp_path / "shipped") / "config.py")
    gpu = setting(shipped, SEED_KNOBS["GPU_CONFIG"])
    edits = {
        "BATCH_SIZE": other_than(setting(shipped, SEED_KNOBS["BATCH_SIZE"]), 40, 48),
        "EPOCHS_DETECCION": setting(shipped, SEED_KNOBS["EPOCHS_DETECCION"]) + 1,
        "EPOCHS_SEGMENTACION": setting(shipped, SEED_KNOBS["EPOCHS_SEGMENTACION"]) + 2,
        "GPU_CONFIG": {
            "ENABLE_MIXED_PRECISION": not gpu["enable_mixed_precision"],
            "ENABLE_XLA": not gpu["enable_xla"],
            "ENABLE_MEMORY_GROWTH": not gpu["enable_memory_growth"],
            "MEMORY_LIMIT_MB": other_than(gpu["memory_limit_mb"], 3000, 2500),
        },
    }
    assert set(edits) == set(SEED_KNOBS) and set(edits["GPU_CONFIG"]) == set(SEED_GPU_KNOBS)
    edited = load_settings(project_root_copy(tmp_path / "edited", **edits) / "config.py")

    expected = shipped.model_dump()
    for name, value in edits.items():
        *parents, last = SEED_KNOBS[name].split(".")
        target = expected
        for part in parents:
            target = target[part]
        if name == "GPU_CONFIG":
            target[last].update({SEED_GPU_KNOBS[key]: v for key, v in value.items()})
        else:
            target[last] = value
    assert edited.model_dump() == expected


def test_precedence_defaults_knobs_run_file_flags(tmp_path):
    knobs = write_knobs(tmp_path, """
        BATCH_SIZE = 32
        EPOCHS_DETECCION = 12
        GPU_CONFIG = {'ENABLE_XLA': False, 'MEMORY_LIMIT_MB': 3000}
    """)
    run = tmp_path / "run.yaml"
    run.write_text("batch_size: 16\ngpu:\n  memory_limit_mb: 2500\n")
    only_knobs = load_settings(knobs)
    assert (only_knobs.detect.batch_size, only_knobs.detect.epochs) == (32, 12)
    assert only_knobs.gpu.enable_xla is False and only_knobs.gpu.memory_limit_mb == 3000
    assert only_knobs.segment.epochs == 35  # untouched default
    with_run = load_settings(knobs, run)
    assert with_run.detect.batch_size == 16 and with_run.gpu.memory_limit_mb == 2500
    assert with_run.gpu.enable_xla is False  # nested keys merge, not replace
    with_flags = load_settings(knobs, run, {"batch_size": 8, "gpu.enable_xla": True,
                                            "gpu.memory_limit_mb": None})
    assert with_flags.detect.batch_size == 8 and with_flags.gpu.enable_xla is True
    assert with_flags.gpu.memory_limit_mb is None  # an explicit null clears the file's limit


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"detect.batch_size": 0}, ["detect.batch_size = 0", ">= 1"]),
        ({"detect.batch_size": "many"}, ["detect.batch_size = 'many'", "integer"]),
        ({"segment.epochs": -3}, ["segment.epochs = -3", ">= 1"]),
        ({"gpu.enable_xla": "maybe"}, ["gpu.enable_xla = 'maybe'", "boolean"]),
        ({"gpu.memory_limit_mb": -1}, ["gpu.memory_limit_mb = -1", "> 0"]),
        ({"detect.backbone": "vgg16"}, ["detect.backbone = 'vgg16'", "'mobilenet_v2'"]),
        ({"image_size_detect": 100}, ["detect.image_size = 100", "multiple of 32"]),  # old name
        ({"cache": "ssd"}, ["cache = 'ssd'", "'memory'"]),
        ({"segment.learning_rate": 5}, ["segment.learning_rate = 5", "< 1"]),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, ["val_fraction + test_fraction", "below 1"]),
        ({"devices": 0}, ["devices=0", "'all'"]),
        ({"bacth_size": 3}, ["bacth_size: unknown setting", "did you mean detect.batch_size"]),
        ({"detect.epoch": 3}, ["detect.epoch: unknown setting", "did you mean detect.epochs"]),
        ({"gpu.enable_fp16": True}, ["gpu.enable_fp16: unknown setting", "enable_mixed_precision"]),
    ],
)
def test_each_bad_value_names_key_value_and_what_is_allowed(overrides, expected):
    with pytest.raises(SettingsError) as caught:
        load_settings(overrides=overrides)
    for fragment in expected:
        assert fragment in str(caught.value)


def test_frozen_epochs_are_clamped_to_the_total():
    short = load_settings(overrides={"epochs_detect": 3})
    assert (short.detect.frozen_phase_epochs, short.detect.fine_tune_epochs) == (3, 0)


def test_errors_name_the_source_file(tmp_path):
    knobs = write_knobs(tmp_path, "BATCH_SIZE = -4\n")
    with pytest.raises(SettingsError, match=r"batch_size = -4 \(from .*config.py\)"):
        load_settings(knobs)
    bad_gpu = write_knobs(tmp_path, "GPU_CONFIG = {'ENABLE_TURBO': True}\n")
    with pytest.raises(SettingsError, match="unknown key.*ENABLE_TURBO.*ENABLE_XLA"):
        load_settings(bad_gpu)
    broken = write_knobs(tmp_path, "BATCH_SIZE = = 3\n")
    with pytest.raises(SettingsError, match="config.py: could not be read as Python"):
        load_settings(broken)
    run = tmp_path / "run.yaml"
    run.write_text("- just\n- a list\n")
    with pytest.raises(SettingsError, match="run.yaml: expected a mapping"):
        load_settings(run_file=run)


def test_settings_round_trip_through_yaml(tmp_path):
    s = load_settings(overrides={"batch_size": 24, "gpu.memory_limit_mb": 2048})
    run = tmp_path / "resolved.yaml"
    run.write_text(s.to_yaml())
    assert load_settings(run_file=run) == s


def shows_batch(settings_yaml: str, batch: int) -> bool:
    return re.search(rf"^\s*batch_size: {batch}$", settings_yaml, re.MULTILINE) is not None


def test_an_edited_config_py_in_the_project_root_is_what_fisuras_reads(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fisuras.cli import main

    shipped = setting(load_settings(REPO_ROOT / "config.py"), SEED_KNOBS["BATCH_SIZE"])
    batch = other_than(shipped, 40, 48)
    root = project_root_copy(tmp_path, BATCH_SIZE=batch)  # a user's edited copy of the project
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "config", raising=False)
    try:  # the seed's scripts `import config` from the root
        imported = importlib.import_module("config")
        assert batch == imported.BATCH_SIZE
    finally:
        sys.modules.pop("config", None)
    shown = CliRunner().invoke(main, ["config", "show"])
    assert shown.exit_code == 0, shown.output
    assert shows_batch(shown.stdout, batch) and not shows_batch(shown.stdout, shipped)
    flagged = CliRunner().invoke(main, ["config", "show", "--set", "batch_size=12"])
    assert flagged.exit_code == 0 and shows_batch(flagged.stdout, 12)
    bad = CliRunner().invoke(main, ["config", "show", "--set", "batch_size=0"])
    assert bad.exit_code != 0 and "batch_size = 0" in bad.output



# --- run files in the encodings Windows tools write (issue 14) -------------------------------

RUN_TEXT = "batch_size: 16\nrun_name: grietas-año\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be-bom"])
def test_run_file_in_utf8_with_or_without_bom_and_utf16_with_bom(tmp_path, encoding):
    # PowerShell 5's `>` writes UTF-16 LE with a BOM; Notepad may add a UTF-8 BOM.
    data = (b"\xfe\xff" + RUN_TEXT.encode("utf-16-be") if encoding == "utf-16-be-bom"
            else RUN_TEXT.encode(encoding))
    run = tmp_path / "run.yaml"
    run.write_bytes(data)
    settings = load_settings(run_file=run)
    assert (settings.detect.batch_size, settings.run_name) == (16, "grietas-año")


@pytest.mark.parametrize(("data", "problem"), [
    (RUN_TEXT.encode("latin-1"), r"not valid UTF-8 text \(byte 0xf1 at position 34\)"),
    (RUN_TEXT.encode("utf-16-le"), "looks like UTF-16 text without a byte-order mark"),
    (RUN_TEXT.encode("utf-32"), "is UTF-32 text"),
], ids=["latin-1", "utf-16-without-bom", "utf-32"])
def test_run_file_in_another_encoding_names_file_and_problem(tmp_path, data, problem):
    run = tmp_path / "run.yaml"
    run.write_bytes(data)
    with pytest.raises(SettingsError, match=rf"run\.yaml: .*{problem}.*save it as UTF-8"):
        load_settings(run_file=run)


def test_cli_reports_a_latin1_run_file_without_a_traceback(tmp_path):
    from click.testing import CliRunner

    from fisuras.cli import main

    run = tmp_path / "run.yaml"
    run.write_bytes(RUN_TEXT.encode("latin-1"))
    result = CliRunner().invoke(main, ["config", "show", "--config", str(run)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "run.yaml: is not valid UTF-8 text" in result.output
    assert "Traceback" not in result.output


# --- run names stay inside runs_dir (issue 14) ---------------------------------------------

@pytest.mark.parametrize("name", ["../../x", "a/b", "a\\b", ".", "..", ".hidden", "C:x",
                                  "ends.", "ends ", "", "x" * 101])
def test_run_name_must_be_one_folder_name(name):
    with pytest.raises(SettingsError) as caught:
        load_settings(overrides={"run_name": name})
    message = str(caught.value)
    assert f"run_name = {name!r} (from command line) is not valid" in message
    assert "allowed: one folder name" in message and "no / or \\" in message


@pytest.mark.parametrize("name", ["cfd-unet-v2", "20240101-101010", "demo-detect",
                                  "grietas año 2", "lr=1e-4,b=8", "v1.2"])
def test_ordinary_run_names_are_accepted(name):
    assert load_settings(overrides={"run_name": name}).run_name == name


def test_a_bad_run_name_in_a_run_file_names_the_file(tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text("run_name: ../outside\n")
    with pytest.raises(SettingsError, match=r"run_name = '../outside' \(from .*run\.yaml\)"):
        load_settings(run_file=run)


def test_the_flat_names_of_earlier_versions_still_work_with_a_note():
    with pytest.warns(FutureWarning, match="epochs_detect is now detect.epochs"):
        settings = load_settings(overrides={"epochs_detect": 5, "learning_rate": 0.01})
    assert settings.detect.epochs == 5
    # learning_rate was shared by both tasks: it lands in both sections
    assert settings.detect.learning_rate == settings.segment.learning_rate == 0.01
    # a run folder written before the sections (flat settings.yaml) still reads
    old = Settings.model_validate({"backbone_segment": "unet_light", "batch_size": 16})
    assert (old.segment.backbone, old.detect.batch_size) == ("unet_light", 16)


def test_the_seed_knob_names_land_in_the_task_sections(tmp_path):
    knobs = tmp_path / "config.py"
    knobs.write_text("BATCH_SIZE = 48\nEPOCHS_DETECCION = 12\nEPOCHS_SEGMENTACION = 20\n")
    settings = load_settings(knobs)
    assert (settings.detect.batch_size, settings.detect.epochs, settings.segment.epochs) == (
        48, 12, 20)
