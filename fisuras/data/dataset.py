"""What a dataset *is* for fisuras: a list of samples (image, label, surface, mask, group).

Readers (``readers.py``) build a :class:`DatasetDescription` from folders; the check
(``check.py``) finds bad files; splits (``splits.py``) cut it into train/val/test; the tf.data
pipeline (``pipeline.py``) turns samples into batches. Everything here is plain data (no I/O
except JSON helpers) so it can be saved in a run folder and read back by evaluation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from fisuras.errors import FisurasError

CLASS_NAMES = ("uncracked", "cracked")  # label 0 / 1
SURFACES = ("deck", "pavement", "wall")
TaskName = Literal["detect", "segment"]  # the task classes are fisuras.tasks.base.Task
TASKS: tuple[str, ...] = ("detect", "segment")


class DatasetLayoutError(FisurasError, ValueError):
    """A folder does not look like any dataset layout fisuras knows, or is ambiguous."""


@dataclass(frozen=True)
class Sample:
    """One image (and its mask for segmentation).

    Attributes:
        image: absolute path of the image file.
        label: 1 cracked / 0 uncracked. For segmentation: 1 if the mask has any crack pixel.
            ``None`` when unknown (e.g. an unreadable mask).
        surface: "deck" | "pavement" | "wall" (SDNET2018 layout) or ``None``.
        mask: absolute mask path (segmentation) or ``None``.
        group: the dataset or sub-folder name used to report results per set, e.g. "seg_cfd", "D".
    """

    image: str
    label: int | None
    surface: str | None = None
    mask: str | None = None
    group: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Sample:
        return cls(
            image=str(data["image"]),
            label=None if data.get("label") is None else int(data["label"]),
            surface=data.get("surface"),
            mask=data.get("mask"),
            group=str(data.get("group", "")),
        )


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth noting) about one file or folder.

    ``kind`` is one of :data:`PROBLEM_KINDS`; the :data:`NOTE_KINDS` are notes, the rest block.
    """

    path: str
    kind: str
    detail: str = ""

    @property
    def blocking(self) -> bool:
        return self.kind in BLOCKING_KINDS


# kind -> one-line meaning, used in reports. Order = order in reports.
PROBLEM_KINDS: dict[str, str] = {
    "unreadable": "image cannot be decoded (truncated or corrupt)",
    "not_image": "file is not an image fisuras can read (jpg, png, bmp)",
    "empty_folder": "folder holds no images",
    "missing_mask": "image has no mask",
    "orphan_mask": "mask has no image",
    "size_mismatch": "mask size differs from its image",
    "duplicate": "exact duplicate of another file (same bytes or same pixels)",
    "label_conflict": "identical images carry different labels",
    "broken_link": "symbolic link to nothing, or into a loop of links (nothing to read)",
    "converted": "unusual image mode, converted to RGB on loading (note only)",
    "exif_rotated": "photo stored turned, upright only by its EXIF orientation (note only)",
    "mask_values": "mask holds values other than 0 and 255, read by a threshold (note only)",
    "link_loop": "link to a folder already read, not followed again (note only)",
}
# Kinds that do not stop training: the file is used (or, for link_loop, already read).
NOTE_KINDS = frozenset({"converted", "exif_rotated", "mask_values", "link_loop"})
BLOCKING_KINDS = frozenset(PROBLEM_KINDS) - NOTE_KINDS


@dataclass
class DatasetDescription:
    """Everything fisuras knows about one dataset on disk.

    Example:
        >>> d = DatasetDescription("detect", "/data", [Sample("/data/P/a.jpg", 1, None, None, "P")])
        >>> DatasetDescription.from_json(d.to_json()).samples[0].label
        1
    """

    task: TaskName
    root: str
    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)

    @property
    def groups(self) -> list[str]:
        """Group names in first-seen order."""
        return list(dict.fromkeys(s.group for s in self.samples))

    def with_samples(self, samples: list[Sample], problems: list[Problem] | None = None):
        """A copy holding other samples (and optionally other problems)."""
        return replace(self, samples=list(samples),
                       problems=list(self.problems if problems is None else problems))

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "root": self.root,
            "samples": [s.to_dict() for s in self.samples],
            "problems": [asdict(p) for p in self.problems],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> DatasetDescription:
        return cls(
            task=data["task"],
            root=data["root"],
            samples=[Sample.from_dict(s) for s in data["samples"]],
            problems=[Problem(**p) for p in data.get("problems", [])],
        )

    @classmethod
    def from_json(cls, text: str) -> DatasetDescription:
        return cls.from_dict(json.loads(text))
