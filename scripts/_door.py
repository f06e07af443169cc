"""Shared by the seed's scripts: make the repository importable and read the root config.py."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
KNOB_FILE = REPO_ROOT / "config.py"

if str(REPO_ROOT) not in sys.path:  # running a script by path, without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))
