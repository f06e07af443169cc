"""Atomic writes: whole files only, with the mode a plain open() would give them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fisuras import files
from fisuras.files import atomic_write, atomic_write_bytes, atomic_write_text

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
