"""Writing results: atomic JSON and CSV files, and plain-text tables for the terminal or a README.

JSON is strict (``allow_nan=False``): NumPy scalars and arrays become Python numbers and lists, and
NaN or infinite floats become ``null``, so every file loads in any JSON reader.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fisuras.files import atomic_write_text


def to_jsonable(obj):
    """Convert NumPy types, dataclasses, paths, tuples and sets into plain JSON-ready values.

    Example:
        >>> to_jsonable({"n": np.int64(3), "a": np.arange(2), "x": float("nan")})
        {'n': 3, 'a': [0, 1], 'x': None}
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; return the path."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def _cell(value, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}" if math.isfinite(value) else "-"
    return str(value)


def _is_numeric_column(values: list) -> bool:
    """Right-align a column when it holds numbers (bools count as text) and nothing else."""
    present = [value for value in values if value is not None]
    return bool(present) and all(
        isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)
        for value in present
    )


def format_table(rows: list[dict], columns: Sequence[str], digits: int = 4) -> str:
    """A Markdown table of ``rows`` restricted to ``columns``; floats with ``digits`` decimals.

    Missing values and ``None`` show as ``-``. Numbers are right-aligned, text left-aligned.

    Example:
        >>> print(format_table([{"group": "cfd", "iou": 0.51234}], ["group", "iou"]))
        | group |    iou |
        |:------|-------:|
        | cfd   | 0.5123 |
    """
    cells = [[_cell(row.get(column), digits) for column in columns] for row in rows]
    numeric = [_is_numeric_column([row.get(column) for row in rows]) for column in columns]
    widths = [
        max([len(str(column))] + [len(line[i]) for line in cells])
        for i, column in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        padded = [
            value.rjust(width) if is_number else value.ljust(width)
            for value, width, is_number in zip(values, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (width + 1) + ":") if is_number else (":" + "-" * (width + 1))
            for width, is_number in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(list(columns)), rule] + [line(values) for values in cells])


def write_csv(path: str | Path, rows: list[dict], columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as CSV atomically; columns default to the keys in first-seen order."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({key: to_jsonable(value) for key, value in row.items()})
    return atomic_write_text(path, buffer.getvalue())
