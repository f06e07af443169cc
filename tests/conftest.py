"""Shared fixtures: the real crack samples beside the repository, and quiet TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (CFD, DeepCrack, CRACK500, METU samples); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real crack samples not found at {SHARED_DATA}")
    return SHARED_DATA


def project_root_copy(folder: Path, **edits) -> Path:
    """A fisuras project root in ``folder``: the repository's ``config.py``, edited, beside
    ``scripts/utils/configurar_gpu.py`` (what ``fisuras.cli.is_project_root`` looks for).

    ``config.py`` is the user's file: tests never assert its values. They edit a copy instead,
    the way a user does, and check the settings follow. Each edit is a seed knob name and its
    new value, assigned at the end of the copy; a ``GPU_CONFIG`` dict edits only the keys it
    names (``GPU_CONFIG={"ENABLE_XLA": False}``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = [(REPO_ROOT / "config.py").read_text(), "", "# edited by the test"]
    for name, value in edits.items():
        if name == "GPU_CONFIG":
            lines.append(f"GPU_CONFIG = {{**globals().get('GPU_CONFIG', {{}}), **{value!r}}}")
        else:
            lines.append(f"{name} = {value!r}")
    (folder / "config.py").write_text("\n".join(lines) + "\n")
    (folder / "scripts" / "utils").mkdir(parents=True, exist_ok=True)
    (folder / "scripts" / "utils" / "configurar_gpu.py").write_text("")
    return folder


def other_than(value, *candidates):
    """The first candidate that differs from ``value``: an edit that really changes something."""
    return next(candidate for candidate in candidates if candidate != value)
