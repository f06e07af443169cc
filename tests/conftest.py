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
