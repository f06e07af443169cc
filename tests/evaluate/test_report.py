"""JSON/CSV writing and text tables."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import numpy as np
import pytest

from fisuras.evaluate.report import format_table, to_jsonable, write_csv, write_json


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


def test_to_jsonable_handles_nested_infinities():
    assert to_jsonable([np.inf, {"a": (np.float64(-np.inf), 2)}]) == [None, {"a": [None, 2]}]


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
    rows = [{"name": "a", "f1": np.float64(0.5)}, {"name": "b", "f1": 1.0, "extra": 3}]
    path = write_csv(tmp_path / "rows.csv", rows)
    with path.open(newline="") as handle:
        back = list(csv.DictReader(handle))
    assert back == [
        {"name": "a", "f1": "0.5", "extra": ""},
        {"name": "b", "f1": "1.0", "extra": "3"},
    ]
