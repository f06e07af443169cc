"""One error base: every fisuras error is a FisurasError; the CLI shows those (and file-system
errors naming their file) as one line, and lets anything else surface with its traceback."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import traceback

import pytest
from click.testing import CliRunner

import fisuras
import fisuras.data
from fisuras.cli import known_error_message, main
from fisuras.errors import FisurasError


def fisuras_exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in a fisuras module (``__main__`` runs the CLI: skipped)."""
    found = []
    for info in pkgutil.walk_packages(fisuras.__path__, "fisuras."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, BaseException) and cls.__module__ == module.__name__]
    return found


def test_every_fisuras_error_derives_from_fisuras_error():
    classes = fisuras_exception_classes()
    errors = [cls for cls in classes if issubclass(cls, Exception)]
    assert len(errors) >= 18, errors  # the walk found the package's errors
    strays = [f"{cls.__module__}.{cls.__qualname__}" for cls in errors
              if not issubclass(cls, FisurasError)]
    assert not strays, f"derive these from fisuras.errors.FisurasError too: {strays}"
    # Only an interrupt (Ctrl-C) is not an error: it stays a KeyboardInterrupt.
    assert all(issubclass(cls, KeyboardInterrupt) for cls in set(classes) - set(errors))


def test_fisuras_errors_keep_their_builtin_base():
    from fisuras.config import SettingsError
    from fisuras.infer.runners import ExportDependencyError
    from fisuras.train.callbacks import CheckpointWriteError

    assert issubclass(SettingsError, ValueError)  # `except ValueError` callers keep working
    assert issubclass(ExportDependencyError, ImportError)
    assert issubclass(CheckpointWriteError, OSError)


def test_known_error_message_is_one_line_for_what_the_user_can_fix():
    assert known_error_message(FisurasError("data/x.png: not an image")) == \
        "data/x.png: not an image"
    missing = FileNotFoundError(2, "No such file or directory", "runs/a/state.json")
    assert known_error_message(missing) == "runs/a/state.json: No such file or directory"
    assert known_error_message(OSError("no file named")) is None
    assert known_error_message(ValueError("a bug")) is None


@pytest.fixture
def empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no project config.py is read
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def test_a_fisuras_error_is_one_line_without_traceback(empty_folder):
    result = CliRunner().invoke(main, ["data", "check", str(empty_folder)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(empty_folder) in lines[0]
    assert "Traceback" not in result.output


def test_a_bad_setting_is_one_line_without_traceback(empty_folder):
    result = CliRunner().invoke(main, ["config", "show", "--set", "no_such_setting=1"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.startswith("Error: ") and "no_such_setting" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("bug", [ZeroDivisionError("division by zero in a helper"),
                                 ValueError("a bare ValueError is a bug now"),
                                 RuntimeError("unexpected state"),
                                 OSError("an OSError that names no file")])
def test_any_other_exception_surfaces_with_its_traceback(empty_folder, monkeypatch, bug):
    def read_dataset(*args, **kwargs):
        raise bug

    monkeypatch.setattr(fisuras.data, "read_dataset", read_dataset)
    result = CliRunner().invoke(main, ["data", "check", str(empty_folder)],
                                catch_exceptions=True)
    assert result.exception is bug  # not turned into a message and SystemExit
    assert result.exit_code != 0
    assert "Error: " not in result.output
    frames = traceback.extract_tb(result.exc_info[2])
    assert any(frame.name == "read_dataset" for frame in frames)  # the traceback is kept


def test_a_file_system_error_naming_its_file_is_one_line(empty_folder, monkeypatch):
    def read_dataset(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(empty_folder / "D"))

    monkeypatch.setattr(fisuras.data, "read_dataset", read_dataset)
    result = CliRunner().invoke(main, ["data", "check", str(empty_folder)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.strip() == f"Error: {empty_folder / 'D'}: Permission denied"


def test_user_fixable_problems_raise_fisuras_errors(tmp_path):
    from types import SimpleNamespace

    from fisuras.config import validate_settings
    from fisuras.data.splits import Manifest
    from fisuras.hardware.facts import gpu_from_text
    from fisuras.infer.predict import predict_paths
    from fisuras.runs import RunFolder

    with pytest.raises(FisurasError, match=r"no_such_setting.*from runs/a/settings\.yaml"):
        validate_settings({"no_such_setting": 1}, "runs/a/settings.yaml")
    (tmp_path / "settings.yaml").write_text("a: [unclosed\n")
    with pytest.raises(FisurasError, match="settings.yaml: not readable as YAML"):
        RunFolder(tmp_path).read_yaml("settings.yaml")
    with pytest.raises(FisurasError, match="not a readable fisuras split manifest"):
        Manifest.load(tmp_path / "manifest.json")
    with pytest.raises(FisurasError, match="expected 'name,compute capability,MiB'"):
        gpu_from_text("RTX 2050,8.6")
    with pytest.raises(FisurasError, match="needs a detector, a segmenter, or both"):
        predict_paths(["x.png"], detector=None, segmenter=None, out_dir=tmp_path / "out")
    detector = SimpleNamespace(card=SimpleNamespace(task="detect"), path=tmp_path)
    with pytest.raises(FisurasError, match=r"tile_overlap must be in \[0, 1\)"):
        predict_paths(["x.png"], detector=detector, segmenter=None, out_dir=tmp_path / "out",
                      tile_overlap=1.0)
    assert not (tmp_path / "out").exists()  # refused before any file is written
