"""The run folder: everything one training run writes, and the state that lets it resume.

Layout of ``runs/<task>/<name>/``::

    settings.yaml  plan.json  hardware.json  data_report.json  manifest.json
    state.json            phase, epoch, batch, best and the history rows: the commit point
    history.csv           one row per epoch (published from state.json)
    checkpoints/last.keras  checkpoints/best.keras   (weights + optimizer: mid-phase resume)
    tensorboard/          TensorBoard logs

An epoch is recorded as one step (:meth:`RunFolder.commit_epoch`): the model is saved under a
new name (``checkpoints/epoch-0007.keras``), then ``state.json`` is replaced, naming that file
and carrying the history rows. That replace is the commit; ``last.keras``, ``best.keras`` and
``history.csv`` are then published from the committed state (:meth:`RunFolder.settle`), again on
the next start if a kill came in between. A kill at any instant so leaves either the previous
epoch or this one, whole: never a skipped or a repeated epoch.
    model.keras  model_card.json  metrics.json  plots/
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fisuras.errors import FisurasError
from fisuras.files import atomic_write, atomic_write_text, is_temp_name, new_folder, write_csv
from fisuras.files import write_json as write_json_file


class RunFolderError(FisurasError, ValueError):
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
    best_epoch: int | None = None  # the epoch best.keras holds
    checkpoint: str | None = None  # the epoch file committed and not yet published
    history: list[dict[str, Any]] | None = None  # the history rows, committed with the epoch


@dataclass
class RunFolder:
    """A run's folder, with helpers to write its files atomically."""

    path: Path

    @classmethod
    def create(cls, runs_dir: str | Path, task: str, name: str | None = None) -> RunFolder:
        """Make ``runs_dir/<task>/<name>``; a default name is the time, made unique."""
        path = new_folder(Path(runs_dir) / task, name)
        (path / "checkpoints").mkdir()
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

    def write_json(self, name: str, data: Any) -> Path:
        return write_json_file(self.file(name), data)

    def read_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())

    def read_yaml(self, name: str) -> Any:
        import yaml

        try:
            return yaml.safe_load(self.file(name).read_text())
        except yaml.YAMLError as error:
            raise RunFolderError(f"{self.file(name)}: not readable as YAML ({error})") from None

    def write_text(self, name: str, text: str) -> Path:
        return atomic_write_text(self.file(name), text)

    # --- state ---------------------------------------------------------------------------
    def write_state(self, state: RunState) -> None:
        self.write_json("state.json", asdict(state))

    def read_state(self) -> RunState:
        """The committed state; a torn or foreign ``state.json`` is an error naming the file."""
        path = self.file("state.json")
        try:
            return RunState(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as error:
            raise RunFolderError(
                f"{path}: cannot be read as a run state ({error}); the run cannot resume from "
                "it. Its checkpoints are in checkpoints/; start a new run") from None

    def read_history(self) -> list[dict[str, Any]]:
        """The history rows: from the committed state, else from history.csv (older runs)."""
        if (self.file("state.json").is_file()
                and (rows := self.read_state().history) is not None):
            return rows
        path = self.file("history.csv")
        if not path.is_file():
            return []
        with path.open(newline="") as handle:
            return [
                {k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)
            ]

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        write_csv(self.file("history.csv"), rows)

    # --- the epoch commit ----------------------------------------------------------------
    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.path / "checkpoints" / f"epoch-{epoch:04d}.keras"

    def committed_checkpoint(self) -> Path:
        """The last committed epoch's model: still under its epoch name until published."""
        state = self.read_state() if self.file("state.json").is_file() else None
        if state is not None and state.checkpoint:
            staged = self.path / "checkpoints" / state.checkpoint
            if staged.is_file():
                return staged
        return self.last_checkpoint

    def commit_epoch(self, state: RunState, save: Callable[[str], None]) -> None:
        """Record ``state`` (its epoch just ended) with the model ``save`` writes, as one step.

        Order: model to a new epoch file (atomic), then ``state.json`` naming it (atomic: the
        commit), then :meth:`settle`. Disk full or a kill before the commit leaves the previous
        epoch's record untouched.
        """
        staged = self.epoch_checkpoint(state.epoch)
        atomic_write(staged, save)
        state.checkpoint = staged.name
        self.write_state(state)
        self.settle(state)

    def settle(self, state: RunState) -> None:
        """Publish the committed epoch: best.keras, last.keras, history.csv. Idempotent.

        Called after each commit and again when a run starts, to finish one a kill cut short.
        """
        staged = self.path / "checkpoints" / state.checkpoint if state.checkpoint else None
        if staged is not None and staged.is_file():
            if state.best_epoch == state.epoch:
                _copy(staged, self.best_checkpoint)
            os.replace(staged, self.last_checkpoint)  # the staged file is gone: published
        if state.history is not None:
            self.write_history(state.history)

    def copy_best_to_last(self) -> None:
        _copy(self.best_checkpoint, self.last_checkpoint)

    def clean_interrupted_writes(self) -> list[Path]:
        """Remove what a killed write left: temp files and epoch files never committed."""
        committed = self.read_state().checkpoint if self.file("state.json").is_file() else None
        left: list[Path] = []
        for path in self.path.rglob("*"):  # plots/, too: the finish writes there atomically
            temp = path.name.startswith(".") and is_temp_name(path.name)
            uncommitted = (path.parent.name == "checkpoints" and path.name.startswith("epoch-")
                           and path.name != committed)
            if path.is_file() and (temp or uncommitted):
                path.unlink()
                left.append(path)
        return left


def _copy(source: Path, target: Path) -> None:
    """Make ``target`` a copy of ``source`` atomically (a copy, not a link: best.keras must
    survive whatever happens to last.keras)."""
    atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


def _number(text: str) -> Any:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value

