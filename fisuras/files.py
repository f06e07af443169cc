"""Small file helpers shared by every module: atomic writes, so a crash never leaves half a file."""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path


@functools.cache
def process_umask() -> int:
    """This process's umask, read once (``os.umask`` can only be read by setting it).

    The umask is process-wide: set it before the first atomic write (tests clear this cache).
    Reading it once keeps short the moment when another thread's new file would get 0o022.
    """
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then move the temporary file over ``path`` in one step.

    The temporary file lives in the same folder, so ``os.replace`` is atomic on POSIX and Windows.
    It is flushed to disk first (a power cut leaves the old file or the new one, not an empty
    one), and the final file gets the mode a plain ``open()`` would give it (``0o666`` less the
    umask), not ``mkstemp``'s private ``0o600``.

    Example:
        >>> atomic_write("out.txt", lambda tmp: Path(tmp).write_text("hi"))  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        _finish(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _finish(tmp: str) -> None:
    """fsync the written temporary file and give it ``open()``'s mode.

    The writer may have closed or even recreated the file, so it is reopened by name.
    """
    if not os.path.isfile(tmp):
        return  # a writer that made a folder: no single file to flush, and 0o644 would lock it
    fd = os.open(tmp, os.O_RDWR if os.name == "nt" else os.O_RDONLY)  # Windows fsync needs write
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o666 & ~process_umask())


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def is_temp_name(name: str) -> bool:
    """True for the name of an :func:`atomic_write` temporary file (``.<name>.<random><suffix>``).

    A kill between the write and the replace leaves one behind; run folders remove them on start.

    Example:
        >>> is_temp_name(".last.keras.k2j4_x9a.keras"), is_temp_name("last.keras")
        (True, False)
    """
    return re.fullmatch(r"\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?", name) is not None
