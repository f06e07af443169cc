"""Atomic writes: whole files only, with the mode a plain open() would give them; JSON, CSV and
PNG writers; Markdown tables."""

from __future__ import annotations

import csv
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fisuras import files
from fisuras.files import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    format_table,
    new_folder,
    to_jsonable,
    write_csv,
    write_json,
    write_png,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")


@pytest.fixture
def umask():
    """Set the process umask for one test (and forget the cached one), then restore it."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_umask(value: int) -> None:
        os.umask(value)
        files.process_umask.cache_clear()

    yield set_umask
    os.umask(previous)
    files.process_umask.cache_clear()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_open_would_give(tmp_path, umask, mask, expected):
    umask(mask)
    text = atomic_write_text(tmp_path / "metrics.json", "{}")
    data = atomic_write_bytes(tmp_path / "model.keras", b"\x00")
    by_writer = atomic_write(tmp_path / "a.png", lambda tmp: Path(tmp).write_bytes(b"png"))
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert mode(plain) == expected
    assert [mode(p) for p in (text, data, by_writer)] == [expected] * 3


def test_replacing_a_file_keeps_contents_whole_and_leaves_no_temporary(tmp_path, umask):
    umask(0o022)
    target = atomic_write_text(tmp_path / "report.csv", "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "model_card.json", "good")

    def broken(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError(f"{tmp}: disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["model_card.json"]


def test_the_written_file_is_flushed_to_disk_before_it_replaces_the_old(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self") else "?")
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", spy)
    target = atomic_write_text(tmp_path / "metrics.json", "{}")
    assert len(synced) == 1 and Path(synced[0]).name != target.name  # the temporary, pre-replace


@dataclass
class _Point:
    x: np.float32
    y: tuple


def test_write_json_converts_numpy_and_stays_strict_json(tmp_path):
    path = write_json(
        tmp_path / "out" / "metrics.json",
        {
            "n": np.int64(7),
            "auc": np.float32(0.25),
            "flag": np.bool_(True),
            "curve": np.linspace(0, 1, 3),
            "missing": float("nan"),
            "point": _Point(np.float32(1.5), (1, 2)),
            "path": tmp_path,
        },
    )
    text = path.read_text()
    assert "NaN" not in text
    data = json.loads(text)
    assert data == {
        "n": 7,
        "auc": 0.25,
        "flag": True,
        "curve": [0.0, 0.5, 1.0],
        "missing": None,
        "point": {"x": 1.5, "y": [1, 2]},
        "path": str(tmp_path),
    }
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp file left


def test_write_json_leaves_the_old_file_when_serialising_fails(tmp_path):
    path = write_json(tmp_path / "m.json", {"ok": 1})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_to_jsonable_handles_nested_infinities_and_to_dict():
    class Plan:
        def to_dict(self):
            return {"batch": np.int32(8)}

    assert to_jsonable([np.inf, {"a": (np.float64(-np.inf), 2)}]) == [None, {"a": [None, 2]}]
    assert to_jsonable({"plan": Plan()}) == {"plan": {"batch": 8}}


def test_format_table_aligns_and_marks_missing_values():
    rows = [
        {"group": "cfd", "iou": 0.51234, "n": 30},
        {"group": "deepcrack", "iou": None, "n": 5},
    ]
    lines = format_table(rows, ["group", "iou", "n", "ods"], digits=3).splitlines()
    assert lines[0] == "| group     |   iou |  n | ods |"
    assert lines[1] == "|:----------|------:|---:|:----|"
    assert lines[2] == "| cfd       | 0.512 | 30 | -   |"
    assert lines[3] == "| deepcrack |     - |  5 | -   |"
    assert len({len(line) for line in lines}) == 1


def test_write_csv_round_trips_rows(tmp_path):
    rows = [{"name": "a", "f1": np.float64(0.5), "note": None},
            {"name": "b", "f1": 1.0, "extra": 3, "note": float("nan")}]
    path = write_csv(tmp_path / "rows.csv", rows)
    with path.open(newline="") as handle:
        back = list(csv.DictReader(handle))
    assert back == [
        {"name": "a", "f1": "0.5", "note": "", "extra": ""},
        {"name": "b", "f1": "1.0", "note": "", "extra": "3"},
    ]
    only = write_csv(tmp_path / "only.csv", rows, ["name"])
    assert only.read_text() == "name\na\nb\n"


def test_write_png_round_trips_pixels(tmp_path):
    pixels = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    path = write_png(tmp_path / "x.png", pixels)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), pixels)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_new_folders_are_timestamped_and_never_shared(tmp_path, monkeypatch):
    monkeypatch.setattr(files.time, "strftime", lambda fmt: "20250101-120000")
    first, second = new_folder(tmp_path / "runs"), new_folder(tmp_path / "runs")
    assert [first.name, second.name] == ["20250101-120000", "20250101-120000-2"]
    assert new_folder(tmp_path / "runs", "mine").name == "mine"
    assert new_folder(tmp_path / "runs", "mine").name == "mine-2"
    assert all(p.is_dir() for p in (first, second))
