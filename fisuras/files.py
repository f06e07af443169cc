"""The I/O helpers every module shares: atomic writes (text, bytes, JSON, CSV, PNG), so a crash
never leaves half a file, and Markdown tables.

JSON is strict (``allow_nan=False``): NumPy scalars and arrays become Python numbers and lists,
and NaN or infinite floats become ``null``, so every file loads in any JSON reader.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


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


def new_folder(base: str | Path, name: str | None = None) -> Path:
    """Create and return a new folder ``base/<name>``: the time (``YYYYmmdd-HHMMSS``) by default,
    with ``-2``, ``-3``... when taken. Creating is the claim, so two processes never share one.

    Example:
        >>> new_folder("runs/benchmark")  # doctest: +SKIP
        PosixPath('runs/benchmark/20250101-120000')
    """
    base = Path(base)
    name = name or time.strftime("%Y%m%d-%H%M%S")
    base.mkdir(parents=True, exist_ok=True)
    suffix = 1
    while True:
        path = base / (name if suffix == 1 else f"{name}-{suffix}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            suffix += 1


def is_temp_name(name: str) -> bool:
    """True for the name of an :func:`atomic_write` temporary file (``.<name>.<random><suffix>``).

    A kill between the write and the replace leaves one behind; run folders remove them on start.

    Example:
        >>> is_temp_name(".last.keras.k2j4_x9a.keras"), is_temp_name("last.keras")
        (True, False)
    """
    return re.fullmatch(r"\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?", name) is not None


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex (read in 1 MB blocks)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values from NumPy scalars and arrays, dataclasses, paths, tuples and sets.

    NaN and infinities become ``None``; an object with ``to_dict()`` gives its dict; anything
    else is returned as it is (``json.dumps`` then names it).

    Example:
        >>> import numpy as np
        >>> to_jsonable({"n": np.int64(3), "a": np.arange(2), "x": float("nan")})
        {'n': 3, 'a': [0, 1], 'x': None}
    """
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):  # arrays and scalars
        return to_jsonable(obj.tolist())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(value) for value in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_dict"):
        return to_jsonable(obj.to_dict())
    return obj


def write_json(path: str | Path, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` (see :func:`to_jsonable`) as indented, strict JSON, atomically.

    An object JSON cannot hold raises ``TypeError`` and leaves any old file as it was.
    """
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def write_csv(path: str | Path, rows: Sequence[dict], columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as CSV, atomically: only ``columns`` (default: the keys, first seen first);
    missing values, ``None`` and NaN are empty cells."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: to_jsonable(value) for key, value in row.items()})
    return atomic_write_text(path, buffer.getvalue())


def write_png(path: str | Path, pixels) -> Path:
    """Save a uint8 ``[H, W]`` or ``[H, W, 3]`` array as PNG, atomically."""
    from PIL import Image

    return atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_table(rows: Sequence[dict], columns: Sequence[str], digits: int = 4) -> str:
    """A Markdown table of ``rows`` restricted to ``columns``; floats with ``digits`` decimals.

    Missing values, ``None`` and NaN show as ``-``. A column holding only numbers (bools count
    as text) is right-aligned, any other left-aligned.

    Example:
        >>> print(format_table([{"group": "cfd", "iou": 0.51234}], ["group", "iou"]))
        | group |    iou |
        |:------|-------:|
        | cfd   | 0.5123 |
    """
    values = [[to_jsonable(row.get(column)) for column in columns] for row in rows]
    cells = [[_cell(value, digits) for value in line] for line in values]
    numeric = [
        any(line[i] is not None for line in values)
        and all(line[i] is None or _is_number(line[i]) for line in values)
        for i in range(len(columns))
    ]
    widths = [max([len(str(column))] + [len(line[i]) for line in cells])
              for i, column in enumerate(columns)]

    def line(texts: Sequence[str]) -> str:
        padded = [text.rjust(width) if is_number else text.ljust(width)
                  for text, width, is_number in zip(texts, widths, numeric, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (width + 1) + ":") if is_number else (":" + "-" * (width + 1))
                          for width, is_number in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line([str(column) for column in columns]), rule]
                     + [line(texts) for texts in cells])
