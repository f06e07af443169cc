"""The package's layering: no package of fisuras imports another that imports it back."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fisuras"


def package_imports() -> dict[str, set[str]]:
    """``{package: packages it imports}``, from every ``import fisuras.X`` / ``from fisuras.X``."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for name in re.findall(r"^\s*(?:from|import) fisuras\.(\w+)", path.read_text(), re.M):
            if name != own:
                found[own].add(name)
    return found


def test_no_two_packages_import_each_other():
    imports = package_imports()
    both_ways = sorted((a, b) for a in imports for b in imports[a]
                       if a < b and a in imports.get(b, set()))
    assert both_ways == []
    assert "tasks" in imports["train"] and "train" not in imports["tasks"]
