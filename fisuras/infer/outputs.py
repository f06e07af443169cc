"""Where inference writes: output names that stay inside the output folder, PNGs and reports.

Output names derive from input stems, reduced to safe characters and made unique
(case-insensitively, for Windows and macOS), and every path is resolved and checked to lie
inside the output folder before anything is written. All files are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from fisuras.errors import FisurasError
from fisuras.files import atomic_write, atomic_write_text

MAX_NAME_LENGTH = 80
_UNSAFE = re.compile(r"[^\w.-]+")  # \w keeps letters of any script: "año" stays "año"


class OutputPathError(FisurasError, ValueError):
    """An output path would land outside the chosen output folder."""


def safe_name(stem: str) -> str:
    """A file-name-safe version of ``stem``: no separators, no leading dots, never empty.

    Example:
        >>> safe_name("../../evil"), safe_name("IMG 001 (copy)"), safe_name(".."), safe_name("año")
        ('evil', 'IMG_001_copy', 'image', 'año')
    """
    cleaned = _UNSAFE.sub("_", stem).strip("._-")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)[:MAX_NAME_LENGTH].strip("._-")
    return cleaned or "image"


def unique_names(stems: Iterable[str]) -> list[str]:
    """:func:`safe_name` of each stem, with ``-2``, ``-3``... added to repeats.

    Example:
        >>> unique_names(["a", "A", "b", "a"])
        ['a', 'A-2', 'b', 'a-3']
    """
    taken: set[str] = set()
    names = []
    for stem in stems:
        base = safe_name(stem)
        name, counter = base, 1
        while name.lower() in taken:
            counter += 1
            name = f"{base}-{counter}"
        taken.add(name.lower())
        names.append(name)
    return names


def inside(out_dir: Path, file_name: str) -> Path:
    """``out_dir / file_name``, refusing any result that resolves outside ``out_dir``."""
    root = out_dir.resolve()
    target = (root / file_name).resolve()
    if target.parent != root:
        raise OutputPathError(f"output file {file_name!r} would be written outside {root}")
    return target


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """Save a uint8 ``[H, W]`` or ``[H, W, 3]`` array as PNG, atomically."""
    return atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


def _plain(value):
    """JSON-friendly values: NumPy scalars and arrays, paths and tuples become plain types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json(path: Path, document: dict) -> Path:
    """Write ``document`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(_plain(document), indent=2) + "\n")


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    """Write ``rows`` (only ``columns``; missing values empty) as CSV, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else _plain(row.get(k))) for k in columns})
    return atomic_write_text(path, buffer.getvalue())
