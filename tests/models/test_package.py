"""Importing fisuras.models must stay cheap: TensorFlow loads only when a builder is used."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_importing_models_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from fisuras.models import BACKBONES, WeightsUnavailableError\n"
        "from fisuras.models.card import ModelCard\n"
        "print(any(name in sys.modules for name in ('tensorflow', 'keras')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)

    assert result.stdout.strip() == "False"


def test_every_public_name_resolves():
    import fisuras.models as models

    assert [name for name in models.__all__ if not hasattr(models, name)] == []
    assert models.LOSSES == ("bce", "bce_dice", "dice", "focal", "tversky")
