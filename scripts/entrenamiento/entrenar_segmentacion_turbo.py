"""Puerta del seed: entrenamiento turbo de segmentacion.

    python3 scripts/entrenamiento/entrenar_segmentacion_turbo.py [DATA] [opciones]

Reads the root config.py (BATCH_SIZE, EPOCHS_*, GPU_CONFIG) and runs exactly
`fisuras train segment DATA --knobs config.py ...`. DATA defaults to datasets/segmentacion.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts import _door  # noqa: E402

DEFAULT_DATA = _door.REPO_ROOT / "datasets" / "segmentacion"

if __name__ == "__main__":
    from fisuras.cli import main

    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        args = [str(DEFAULT_DATA), *args]
    main(["train", "segment", *args, "--knobs", str(_door.KNOB_FILE)])
