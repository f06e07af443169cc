"""The models fisuras ships: trained crack models in the package, usable offline by name.

Each has a recipe under version control (``recipes/<name>.yaml``: data, settings, licence) that
``fisuras models train NAME --zoo ../shared/zoo`` runs again (``fisuras.train.recipe``: this
package is only the registry, below models, infer and train); the trained model is installed
with the package as ``models/<name>/`` (``model.keras``, ``model_card.json``: a run folder's
shape, so it loads like a run; ``shipped.json``: recipe, data, figures).

Example:
    >>> sorted(RECIPES)
    ['crack-det-s', 'crack-seg-s']
"""

from __future__ import annotations

from pathlib import Path

from fisuras.errors import FisurasError

HERE = Path(__file__).parent
RECIPES = {path.stem: path for path in sorted((HERE / "recipes").glob("*.yaml"))}
MAX_MODEL_BYTES = 10 * 2**20  # what a shipped model may weigh
# What `fisuras predict PHOTO...` uses when given no model: task -> shipped name. Each entry fills
# the detector ("detect") or segmenter ("segment") slot; both entries make it a cascade. The
# segmenter alone: the cascade with crack-det-s is faster but loses ODS on asphalt photos
# (BENCHMARKS.md, "Shipped models at work").
DEFAULT_PREDICT_MODELS: dict[str, str] = {"segment": "crack-seg-s"}
PREDICT_ROLES = {"detect": "detector", "segment": "segmenter"}


class ShippedModelError(FisurasError, ValueError):
    """An unknown shipped model name, or one whose file is not installed."""


def installed_models() -> list[str]:
    """The shipped models whose files are installed (a recipe may not be trained yet)."""
    return [name for name in RECIPES if (HERE / "models" / name / "model.keras").is_file()]


def list_shipped() -> list[str]:
    """One line per shipped model: name, task, summary, and its figures or "not trained yet"."""
    import json

    import yaml

    lines = []
    for name, recipe_file in RECIPES.items():
        recipe = yaml.safe_load(recipe_file.read_text(encoding="utf-8"))
        card_file = HERE / "models" / name / "shipped.json"
        status = f"not trained yet (fisuras models train {name} --zoo ../shared/zoo)"
        if card_file.is_file():
            card = json.loads(card_file.read_text(encoding="utf-8"))
            status = (f"{card['size_bytes'] / 2**20:.1f} MB, trained {card['trained']}; "
                      + "; ".join(headline_figures(card)))
        lines.append(f"{name:<12} {recipe['task']:<8} {recipe['summary']} — {status}")
    return lines


def headline_figures(card: dict) -> list[str]:
    """The figures ``fisuras models`` shows from a shipped card: per report set, never pooled.

    Example:
        >>> card = {"task": "detect", "figures": {"held_out_test_split": {"overall": {
        ...     "accuracy": 0.9983, "n": 574}}}}
        >>> headline_figures(card)
        ['accuracy 0.998 on 574 held-out patches']
    """
    figures = card.get("figures", {})
    if card["task"] == "detect":
        overall = figures.get("held_out_test_split", {}).get("overall")
        return ([f"accuracy {overall['accuracy']:.3f} on {overall['n']} held-out patches"]
                if overall else [])
    shown = []
    for report_set in card.get("report_sets", []):
        entry = figures.get(report_set)
        if not entry:
            continue
        model = next(v for k, v in entry["model"].items() if k != "all_groups_pooled")
        floor = next(iter((entry.get("floor") or {}).get("figures", {}).values()), None)
        shown.append(f"{report_set} ODS {model['ods']:.3f}"
                     + (f" (floor {floor['ods']:.3f})" if floor else ""))
    return shown


def shipped_network(name: str) -> tuple[str, str]:
    """``(task, backbone)`` of the shipped model ``name``, from its recipe (no model loaded).

    Example:
        >>> shipped_network("crack-seg-s")
        ('segment', 'unet_light')
    """
    import yaml

    if name not in RECIPES:
        raise ShippedModelError(f"no shipped model called {name!r}; shipped: "
                                f"{', '.join(RECIPES)} (`fisuras models` lists them)")
    recipe = yaml.safe_load(RECIPES[name].read_text(encoding="utf-8"))
    return recipe["task"], recipe["settings"][recipe["task"]]["backbone"]


def shipped_model_folder(name: str) -> Path:
    """The installed folder of the shipped model ``name`` (loads like a run folder)."""
    if name not in RECIPES:
        raise ShippedModelError(f"no shipped model called {name!r}; shipped: "
                                f"{', '.join(RECIPES)} (`fisuras models` lists them)")
    path = HERE / "models" / name
    if not (path / "model.keras").is_file():
        raise ShippedModelError(f"{name}: its model file {path} is not installed yet; train it "
                                f"with `fisuras models train {name} --zoo ../shared/zoo`")
    return path


def default_predict_models() -> dict[str, Path]:
    """Task -> installed folder of each model in :data:`DEFAULT_PREDICT_MODELS` (what predict
    uses when given no model); a default not installed yet is a :class:`ShippedModelError`."""
    folders = {}
    for task, name in DEFAULT_PREDICT_MODELS.items():
        try:
            folders[task] = shipped_model_folder(name)
        except ShippedModelError as error:
            if name not in RECIPES:  # a bad default is a bug, said as it is
                raise
            raise ShippedModelError(
                f"no model given and the shipped {PREDICT_ROLES.get(task, task)} {name} is not "
                f"installed ({HERE / 'models' / name / 'model.keras'} is missing): give --model "
                f"RUN or train it with `fisuras models train {name} --zoo ../shared/zoo`"
            ) from error
    return folders
