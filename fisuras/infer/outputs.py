"""Where inference writes: output names that stay inside the output folder.

Output names derive from input stems, reduced to safe characters and made unique
(case-insensitively, for Windows and macOS), and every path is resolved and checked to lie
inside the output folder before anything is written (by :mod:`fisuras.files`, atomically).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from fisuras.errors import FisurasError

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
