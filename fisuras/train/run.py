"""The run folder: everything one training run writes, and the state that lets it resume.

Layout of ``runs/<task>/<name>/``::

    settings.yaml  plan.json  hardware.json  data_report.json  manifest.json
    state.json            phase, epoch and batch reached (written atomically each epoch)
    history.csv           one row per epoch (rewritten atomically each epoch)
    checkpoints/last.keras  checkpoints/best.keras   (atomic)
    backup/<phase>/       Keras BackupAndRestore files: weights + optimizer for mid-phase resume
    tensorboard/          TensorBoard logs
    model.keras  model_card.json  metrics.json  plots/
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fisuras.files import atomic_write_text


class RunFolderError(ValueError):
    """A run folder is missing, incomplete, or of another task."""


@dataclass
class RunState:
    """Where training stands: the resume point."""

    task: str
    phase_index: int = 0  # the phase being trained (or next to train)
    epoch: int = 0  # global epochs completed across phases
    batch_size: int = 0  # current batch (after any out-of-memory back-off)
    finished: bool = False
    best_value: float | None = None
    events: list[str] = field(default_factory=list)


@dataclass
class RunFolder:
    """A run's folder, with helpers to write its files atomically."""

    path: Path

    @classmethod
    def create(cls, runs_dir: str | Path, task: str, name: str | None = None) -> RunFolder:
        """Make ``runs_dir/<task>/<name>``; a default name is the time, made unique."""
        base = Path(runs_dir) / task
        name = name or time.strftime("%Y%m%d-%H%M%S")
        path, suffix = base / name, 1
        while path.exists():
            suffix += 1
            path = base / f"{name}-{suffix}"
        (path / "checkpoints").mkdir(parents=True)
        return cls(path)

    @classmethod
    def open(cls, path: str | Path, task: str | None = None) -> RunFolder:
        """Open an existing run (for resume or evaluation); check it is what we expect."""
        run = cls(Path(path))
        if not (run.path / "state.json").is_file():
            raise RunFolderError(f"{path}: not a fisuras run folder (no state.json)")
        if task is not None and run.read_state().task != task:
            raise RunFolderError(
                f"{path}: is a {run.read_state().task!r} run, not {task!r}")
        return run

    # --- files ---------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def last_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.keras"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "best.keras"

    def backup_dir(self, phase_name: str) -> Path:
        return self.path / "backup" / phase_name

    def write_json(self, name: str, data: Any) -> Path:
        return atomic_write_text(self.file(name), json.dumps(data, indent=2, default=_plain))

    def read_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())

    def read_yaml(self, name: str) -> Any:
        import yaml

        return yaml.safe_load(self.file(name).read_text())

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.file(name), text)

    # --- state ---------------------------------------------------------------------------
    def write_state(self, state: RunState) -> None:
        self.write_json("state.json", asdict(state))

    def read_state(self) -> RunState:
        return RunState(**self.read_json("state.json"))

    def read_history(self) -> list[dict[str, Any]]:
        path = self.file("history.csv")
        if not path.is_file():
            return []
        with path.open(newline="") as handle:
            return [
                {k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)
            ]

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        columns: list[str] = []
        for row in rows:
            columns += [key for key in row if key not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        self.write_text("history.csv", buffer.getvalue())


def _number(text: str) -> Any:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def _plain(value: Any) -> Any:
    """JSON fallback for NumPy scalars and paths."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
