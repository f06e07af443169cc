"""Settings: one typed, validated object that flows from the user's files and flags into the code.

Sources, in rising priority:

1. the defaults below (the seed's turbo setup: batch 64, detection 8 frozen + 22 fine-tune epochs,
   segmentation 35 epochs, mixed precision, XLA and memory growth requested);
2. the root ``config.py`` knob file, read by its seed names (``BATCH_SIZE``, ``EPOCHS_DETECCION``,
   ``EPOCHS_SEGMENTACION``, ``GPU_CONFIG``); the command line reads ``./config.py`` only in the
   project root, or when given with ``--knobs`` (``fisuras.cli.resolve_settings``);
3. an optional YAML run file with the field names of :class:`Settings`;
4. command-line flags (dotted keys such as ``gpu.enable_xla``).

The GPU knobs are *requests*: ``fisuras.hardware.plan`` decides what the hardware found can honour
and says why. This module does not import TensorFlow.

Each task has its section (``detect.epochs``, ``segment.backbone``, ...); the flat names of
earlier versions (``epochs_detect``) are still read, with a note (``FLAT_KEYS``).

Example:
    >>> s = load_settings(overrides={"detect.batch_size": 32})
    >>> s.detect.batch_size, s.detect.epochs, s.detect.fine_tune_epochs
    (32, 30, 22)
"""

from __future__ import annotations

import difflib
import re
import runpy
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from fisuras.errors import FisurasError
from fisuras.models.names import DETECT_BACKBONES, LOSSES, SEGMENT_BACKBONES

# The allowed names come from the model registries (``fisuras.models.names``).
Backbone = Literal[DETECT_BACKBONES]  # type: ignore[valid-type]
SegBackbone = Literal[SEGMENT_BACKBONES]  # type: ignore[valid-type]
Loss = Literal[LOSSES]  # type: ignore[valid-type]

# The seed's knob names in the root config.py, and where each one lands in Settings.
SEED_KNOBS = {
    "BATCH_SIZE": "detect.batch_size",
    "EPOCHS_DETECCION": "detect.epochs",
    "EPOCHS_SEGMENTACION": "segment.epochs",
    "GPU_CONFIG": "gpu",
}
SEED_GPU_KNOBS = {
    "ENABLE_MIXED_PRECISION": "enable_mixed_precision",
    "ENABLE_XLA": "enable_xla",
    "ENABLE_MEMORY_GROWTH": "enable_memory_growth",
    "MEMORY_LIMIT_MB": "memory_limit_mb",
}


# A run name becomes one folder under runs_dir/<task>/: no separators, no "..", nothing hidden,
# nothing Windows refuses in a folder name (so a run made on Linux copies to a laptop).
RUN_NAME_PATTERN = re.compile(r"\w[\w.+=@,\- ]{0,99}")
RUN_NAME_RULE = ("one folder name, up to 100 characters of letters, digits, space and _ - . + = @ ,"
                 " starting with a letter, digit or _ and not ending with a space or dot "
                 "(no / or \\, no '..'), e.g. 'cfd-unet-v2'")


class SettingsError(FisurasError, ValueError):
    """A bad value or unknown name; the message names key, value and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GpuSettings(_Strict):
    """The seed's ``GPU_CONFIG``: what the user asks for; the hardware plan decides what applies."""

    enable_mixed_precision: bool = True
    enable_xla: bool = True
    enable_memory_growth: bool = True
    memory_limit_mb: int | None = Field(default=None, gt=0)
    precision: Literal["auto", "float16", "bfloat16"] = "auto"


class DetectSettings(_Strict):
    """Patch classification (``detect``): the seed's two-phase transfer-learning recipe."""

    epochs: int = Field(default=30, ge=1)  # the seed's EPOCHS_DETECCION
    frozen_epochs: int = Field(default=8, ge=0)  # backbone frozen first, then fine-tuning
    backbone: Backbone = "mobilenet_v2"
    image_size: int = Field(default=224, ge=32, le=1024, multiple_of=32)
    batch_size: int = Field(default=64, ge=1, le=4096)  # the seed's BATCH_SIZE
    # Learning rates are given for reference_batch_size and scaled linearly with the batch.
    learning_rate: float = Field(default=1e-3, gt=0, lt=1)
    fine_tune_learning_rate: float = Field(default=1e-5, gt=0, lt=1)
    reference_batch_size: int = Field(default=64, ge=1)
    dropout: float = Field(default=0.2, ge=0, lt=1)

    @property
    def frozen_phase_epochs(self) -> int:
        """Phase-1 epochs: ``frozen_epochs``, at most all of ``epochs``.

        Clamped rather than rejected, so ``--epochs 3`` works without also lowering the 8.
        """
        return min(self.frozen_epochs, self.epochs)

    @property
    def fine_tune_epochs(self) -> int:
        """Phase-2 epochs: the rest of ``epochs`` after the frozen phase (30 - 8 = 22)."""
        return self.epochs - self.frozen_phase_epochs


class SegmentSettings(_Strict):
    """Crack segmentation (``segment``): a U-Net on random crops, scored with a tolerance."""

    epochs: int = Field(default=35, ge=1)  # the seed's EPOCHS_SEGMENTACION
    frozen_epochs: int = Field(default=0, ge=0)  # encoder warm-up (pretrained encoders only)
    backbone: SegBackbone = "mobilenet_v2"
    image_size: int = Field(default=256, ge=32, le=1024, multiple_of=32)  # the crop side
    # "auto": the plan chooses for the crop size and the card (``fisuras config show --plan``).
    batch_size: int | Literal["auto"] = "auto"
    learning_rate: float = Field(default=1e-3, gt=0, lt=1)
    reference_batch_size: int = Field(default=8, ge=1)  # the batch learning_rate is for
    loss: Loss = "bce_dice"
    # An epoch: "one" random crop per photo, or "area": every photo about once at the crop size
    # (its area in crops, placed at random); then repeated until it has at least
    # min_steps_per_epoch steps. Scale jitter: crop windows of S x a factor in this range,
    # resized to S.
    crops_per_photo: Literal["one", "area"] = "area"
    min_steps_per_epoch: int = Field(default=25, ge=0)
    scale_jitter: tuple[float, float] = (0.8, 1.25)
    # Learning rate per step: linear warm-up over the first epoch, then cosine decay to 1% by
    # the end of each phase (Keras's CosineDecay shape); "constant" keeps the rate.
    lr_schedule: Literal["warmup_cosine", "constant"] = "warmup_cosine"
    tolerance_px: int = Field(default=2, ge=0, le=20)  # evaluation: the F1's tolerance

    @model_validator(mode="after")
    def _check_relations(self) -> SegmentSettings:
        if isinstance(self.batch_size, int) and not 1 <= self.batch_size <= 4096:
            raise ValueError(f"segment.batch_size={self.batch_size}; allowed: 'auto' or a whole "
                             "number from 1 to 4096")
        low, high = self.scale_jitter
        if not 0 < low <= high:
            raise ValueError(f"segment.scale_jitter={list(self.scale_jitter)}; allowed: "
                             "[low, high] with 0 < low <= high, e.g. [0.8, 1.25] ([1, 1]: off)")
        return self


# Flat keys of fisuras before the task sections, and where each lives now (learning_rate was
# shared by both tasks). Still read, with a deprecation note (``migrate_flat_keys``).
FLAT_KEYS: dict[str, tuple[str, ...]] = {
    "batch_size": ("detect.batch_size",),
    "epochs_detect": ("detect.epochs",),
    "frozen_epochs_detect": ("detect.frozen_epochs",),
    "backbone_detect": ("detect.backbone",),
    "image_size_detect": ("detect.image_size",),
    "learning_rate": ("detect.learning_rate", "segment.learning_rate"),
    "fine_tune_learning_rate": ("detect.fine_tune_learning_rate",),
    "reference_batch_size": ("detect.reference_batch_size",),
    "dropout": ("detect.dropout",),
    "batch_size_segment": ("segment.batch_size",),
    "epochs_segment": ("segment.epochs",),
    "frozen_epochs_segment": ("segment.frozen_epochs",),
    "backbone_segment": ("segment.backbone",),
    "image_size_segment": ("segment.image_size",),
    "reference_batch_size_segment": ("segment.reference_batch_size",),
    "loss_segment": ("segment.loss",),
    "crops_per_photo_segment": ("segment.crops_per_photo",),
    "min_steps_per_epoch_segment": ("segment.min_steps_per_epoch",),
    "scale_jitter_segment": ("segment.scale_jitter",),
    "lr_schedule_segment": ("segment.lr_schedule",),
    "tolerance_px": ("segment.tolerance_px",),
}


def migrate_flat_keys(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``values`` with the old flat keys moved into their task sections, and one note per key.

    Example:
        >>> migrate_flat_keys({"epochs_detect": 5})
        ({'detect': {'epochs': 5}}, ['epochs_detect is now detect.epochs'])
    """
    moved = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()
             if k not in FLAT_KEYS}
    notes = []
    for old, value in values.items():
        if old not in FLAT_KEYS:
            continue
        for new in FLAT_KEYS[old]:
            section, key = new.split(".")
            target = moved.setdefault(section, {})
            if isinstance(target, dict):
                target.setdefault(key, value)  # the new key wins when both are given
        notes.append(f"{old} is now {' and '.join(FLAT_KEYS[old])}")
    return moved, notes


class Settings(_Strict):
    """Everything a run needs to know, resolved once and saved with the run.

    Each task has its section (``detect``, ``segment``: :class:`DetectSettings`,
    :class:`SegmentSettings`); the rest is shared. ``settings.section("segment").epochs``.
    """

    detect: DetectSettings = Field(default_factory=DetectSettings)
    segment: SegmentSettings = Field(default_factory=SegmentSettings)

    # Models
    weights: str = Field(default="imagenet", min_length=1)
    steps_per_execution: int | Literal["auto"] = "auto"

    # Data
    seed: int = 42  # splits, shuffling, augmentation and the initial weights
    val_fraction: float = Field(default=0.15, ge=0, lt=1)
    test_fraction: float = Field(default=0.15, ge=0, lt=1)
    skip_bad: bool = False
    cache: Literal["auto", "memory", "disk", "none"] = "auto"
    augment: bool = True
    deterministic: bool = False  # fixed order and seeded augmentation (tests, exact resume)

    # Hardware requests and scale-out
    gpu: GpuSettings = Field(default_factory=GpuSettings)
    devices: int | Literal["all"] = 1
    workers: int = Field(default=1, ge=1)

    # Where runs go
    runs_dir: str = "runs"
    run_name: str | None = None  # a folder under runs_dir/<task>/ (RUN_NAME_RULE)

    @model_validator(mode="before")
    @classmethod
    def _read_flat_keys(cls, values: Any) -> Any:
        # Run folders written before the task sections hold flat keys: still readable.
        return migrate_flat_keys(values)[0] if isinstance(values, dict) else values

    @field_validator("run_name")
    @classmethod
    def _single_folder_name(cls, name: str | None) -> str | None:
        # "../../x" or "a/b" would put the run outside runs_dir; a trailing space or dot is
        # silently dropped by Windows, so the folder would not be found again.
        if name is not None and not (RUN_NAME_PATTERN.fullmatch(name)
                                     and not name.endswith((" ", "."))):
            raise ValueError(RUN_NAME_RULE)
        return name

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction}; "
                "allowed: below 1 so that something is left to train on"
            )
        if isinstance(self.devices, int) and self.devices < 1:
            raise ValueError(f"devices={self.devices}; allowed: 'all' or a whole number >= 1")
        return self

    def updated(self, overrides: dict[str, Any]) -> Settings:
        """A validated copy with ``overrides`` applied (dotted keys: ``{"detect.epochs": 3}``).

        Example:
            >>> Settings().updated({"segment.epochs": 3}).segment.epochs
            3
        """
        return load_settings(overrides={**dotted(self.to_dict()), **overrides})

    def section(self, task: str) -> DetectSettings | SegmentSettings:
        """The settings section of ``task`` ("detect" or "segment")."""
        if task not in ("detect", "segment"):
            raise SettingsError(f"unknown task {task!r}; allowed: 'detect', 'segment'")
        return getattr(self, task)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON/YAML and the run folder)."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The resolved settings as YAML, the same shape a run file takes."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def read_knob_file(path: str | Path) -> dict[str, Any]:
    """Read the seed's root ``config.py`` and return its knobs under :class:`Settings` names.

    The file is executed as Python (it is the user's own file); only the seed's names are read.

    Example:
        >>> read_knob_file("config.py")["batch_size"]  # doctest: +SKIP
        64
    """
    path = Path(path)
    try:
        namespace = runpy.run_path(str(path))
    except Exception as error:  # a syntax error in the user's file must name the file
        raise SettingsError(f"{path}: could not be read as Python ({error})") from error
    values: dict[str, Any] = {}
    for seed_name, key in SEED_KNOBS.items():
        if seed_name not in namespace:
            continue
        value = namespace[seed_name]
        if seed_name == "GPU_CONFIG":
            value = _read_gpu_knobs(path, value)
        values[key] = value
    return _undot(values)


def _read_gpu_knobs(path: Path, gpu_config: Any) -> dict[str, Any]:
    if not isinstance(gpu_config, dict):
        raise SettingsError(
            f"{path}: GPU_CONFIG = {gpu_config!r}; allowed: a dict with keys "
            f"{', '.join(SEED_GPU_KNOBS)}"
        )
    unknown = sorted(set(gpu_config) - set(SEED_GPU_KNOBS))
    if unknown:
        raise SettingsError(
            f"{path}: GPU_CONFIG has unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(SEED_GPU_KNOBS)}"
        )
    return {SEED_GPU_KNOBS[name]: value for name, value in gpu_config.items()}


def read_run_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML run file (keys are :class:`Settings` field names, ``gpu`` nested)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SettingsError(f"{path}: could not be read ({error})") from error
    try:
        data = yaml.safe_load(decode_text_file(path, raw)) or {}
    except yaml.YAMLError as error:
        raise SettingsError(f"{path}: could not be read as YAML ({error})") from error
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


_SAVE_AS_UTF8 = ("save it as UTF-8 (in PowerShell: Get-Content FILE | Set-Content -Encoding utf8 "
                 "NEW_FILE; in an editor: Save with encoding UTF-8)")


def decode_text_file(path: str | Path, raw: bytes) -> str:
    """Text of a settings file: UTF-8, UTF-8 with BOM, or UTF-16 with BOM (PowerShell's ``>``).

    Raises:
        SettingsError: any other encoding, naming the file and the problem.
    """
    # UTF-32's BOM starts with UTF-16's (FF FE): test it first so it is not misread.
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise SettingsError(f"{path}: is UTF-32 text; {_SAVE_AS_UTF8}")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"  # the BOM says which byte order
    elif raw.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif b"\x00" in raw:  # valid UTF-8 bytes, but no text file holds NUL: UTF-16 sans BOM
        raise SettingsError(f"{path}: holds NUL bytes, so it looks like UTF-16 text without a "
                            f"byte-order mark; {_SAVE_AS_UTF8}")
    else:
        encoding = "utf-8"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        what = "UTF-16" if encoding == "utf-16" else "UTF-8"
        raise SettingsError(
            f"{path}: is not valid {what} text (byte 0x{raw[error.start]:02x} at position "
            f"{error.start}); {_SAVE_AS_UTF8}") from None


def load_settings(
    knob_file: str | Path | None = None,
    run_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Resolve settings from defaults < ``knob_file`` < ``run_file`` < ``overrides``.

    ``overrides`` may use dotted keys for nested values (``{"gpu.enable_xla": False}``); an
    explicit ``None`` is a value (``gpu.memory_limit_mb=None`` clears a limit from config.py).

    Raises:
        SettingsError: naming the key, the bad value and what is allowed.
    """
    merged: dict[str, Any] = {}
    layers: list[tuple[str, dict[str, Any]]] = []
    if knob_file is not None:
        layers.append((str(knob_file), read_knob_file(knob_file)))
    if run_file is not None:
        layers.append((str(run_file), read_run_file(run_file)))
    if overrides:
        layers.append(("command line", _undot(dict(overrides))))
    for index, (source, values) in enumerate(layers):
        values, notes = migrate_flat_keys(values)
        layers[index] = (source, values)
        for note in notes:  # FutureWarning: shown to users by default, unlike Deprecation
            warnings.warn(f"{source}: {note} (the old name still works, for now)",
                          FutureWarning, stacklevel=2)
        _deep_update(merged, values)
    try:
        return Settings(**merged)
    except ValidationError as error:
        raise SettingsError(_explain(error, layers)) from None


def validate_settings(values: Any, source: str) -> Settings:
    """``Settings`` from a whole set of ``values`` (a run's settings.yaml...) read from ``source``.

    Raises:
        SettingsError: naming the key, the bad value, ``source`` and what is allowed.
    """
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise SettingsError(_explain(error, [(source, values)])) from None


def dotted(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"gpu": {"enable_xla": True}}`` -> ``{"gpu.enable_xla": True}``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _undot(values: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in values.items():
        target = nested
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return nested


def _deep_update(base: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


_BOUND_WORDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "multiple_of": "a multiple of"}


def _allowed(key_path: tuple, message: str) -> str:
    """What a field accepts, read from the schema (bounds) and pydantic's own message."""
    model: type[BaseModel] = Settings
    for part in key_path[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return message
        model = field.annotation
    field = model.model_fields.get(str(key_path[-1]))
    if field is None:
        return f"one of {', '.join(model.model_fields)}"
    bounds = [
        f"{_BOUND_WORDS[name]} {value}"
        for constraint in field.metadata
        for name in _BOUND_WORDS
        if (value := getattr(constraint, name, None)) is not None
    ]
    wanted = message.removeprefix("Input should be ")
    return wanted + (f" ({', '.join(bounds)})" if bounds else "")


def _explain(error: ValidationError, layers: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [f"{error.error_count()} invalid setting(s):"]
    for item in error.errors():
        key_path = tuple(p for p in item["loc"] if not str(p).startswith(("int", "literal")))
        key = ".".join(str(p) for p in key_path) or "settings"
        source = _source_of(key_path, layers)
        if item["type"] == "extra_forbidden":
            close = _close_keys(key)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            lines.append(
                f"  {key}: unknown setting (from {source}){hint}; allowed: "
                f"{_allowed(key_path, 'unknown name')}"
            )
        elif item["type"] == "value_error" and not key_path:  # a rule between several fields
            lines.append(f"  {item['msg'].removeprefix('Value error, ')}")
        elif item["type"] == "value_error":  # one field's own rule: its message is what's allowed
            lines.append(
                f"  {key} = {item.get('input')!r} (from {source}) is not valid; "
                f"allowed: {item['msg'].removeprefix('Value error, ')}"
            )
        else:
            lines.append(
                f"  {key} = {item.get('input')!r} (from {source}) is not valid; "
                f"allowed: {_allowed(key_path, item['msg'])}"
            )
    return "\n".join(lines)


def _close_keys(key: str) -> list[str]:
    """Known dotted keys that ``key`` is probably a misspelling of (by full name or last part)."""
    def score(known: str) -> float:
        leaf = known.rsplit(".", 1)[-1]
        return max(difflib.SequenceMatcher(None, key, known).ratio(),
                   difflib.SequenceMatcher(None, key.rsplit(".", 1)[-1], leaf).ratio())

    scored = [(score(known), known) for known in dotted(Settings().to_dict())]
    best = max(s for s, _ in scored)
    return sorted(k for s, k in scored if s >= max(best, 0.75))[:2]


def _source_of(key_path: tuple, layers: list[tuple[str, dict[str, Any]]]) -> str:
    for source, values in reversed(layers):
        node: Any = values
        for part in key_path:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return source
    return "defaults"
