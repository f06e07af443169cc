"""Puerta del seed: ``python3 scripts/utils/verificar_gpu.py`` runs ``fisuras doctor``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts import _door  # noqa: E402

if __name__ == "__main__":
    from fisuras.cli import main

    sys.exit(main(["doctor", "--knobs", str(_door.KNOB_FILE)]))
