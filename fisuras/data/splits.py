"""Train / validation / test splits that never move a file and never leak a duplicate.

Each file's split is a pure function of ``(seed, key)``: the key is the hash of its duplicate
group's content (``CheckReport.content_keys``), or of the file's bytes, or (for files that do
not exist, e.g. in tests) of its name. The key is mapped to a number u in [0, 1):
``u < test`` -> test, ``u < test + val`` -> val, else train. So

* the same seed gives the same split, on any machine;
* adding files never moves existing ones (no ranks, no counts involved);
* identical files share a key, so a duplicate group always lands in one split;
* every (label, surface) stratum is split by the same independent draw, so its proportions
  come out close to the fractions (binomial spread: about ``sqrt(f(1-f)/n)`` for a stratum of
  n files — 2.9 points for n=150 at f=0.15). ``Manifest.stratum_counts`` shows what happened.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fisuras.data.dataset import DatasetDescription, Sample
from fisuras.errors import FisurasError
from fisuras.files import write_json

SPLITS = ("train", "val", "test")
MANIFEST_VERSION = 1


class ManifestError(FisurasError, ValueError):
    """A split manifest (``manifest.json``) is missing or unreadable."""


@dataclass
class Manifest:
    """The split of a dataset, saved as JSON in the run folder and reused by evaluation.

    ``manifest["train"]`` is the list of training samples.
    """

    splits: dict[str, list[Sample]]
    seed: int
    fractions: dict[str, float]
    task: str = "detect"
    root: str = ""
    extra: dict = field(default_factory=dict)

    def __getitem__(self, split: str) -> list[Sample]:
        return self.splits[split]

    def class_counts(self, split: str) -> dict[int, int]:
        """``{0: n_uncracked, 1: n_cracked}`` in one split."""
        found = Counter(s.label for s in self.splits[split])
        return {0: found[0], 1: found[1]}

    def class_weights(self, split: str = "train") -> dict[int, float]:
        """Balanced weights ``n / (2 * n_c)``; a class absent from the split gets 1.0.

        Example: 85 uncracked and 15 cracked give ``{0: 0.588..., 1: 3.33...}``.
        """
        counts = self.class_counts(split)
        total = sum(counts.values())
        return {c: (total / (2 * n) if n else 1.0) for c, n in counts.items()}

    def stratum_counts(self) -> dict[str, dict[str, int]]:
        """Files per split for each ``label/surface`` stratum, e.g. ``{"1/deck": {...}}``."""
        table: dict[str, dict[str, int]] = {}
        for split, samples in self.splits.items():
            for s in samples:
                row = table.setdefault(_stratum(s), dict.fromkeys(SPLITS, 0))
                row[split] += 1
        return dict(sorted(table.items()))

    def summary(self) -> str:
        """A few lines: sizes, class counts and weights per split (detection); photos per split
        (segmentation, whose loss weighs pixels: image classes and their weights don't apply)."""
        lines = [f"split seed {self.seed}, fractions {self.fractions}"]
        if self.task == "segment":
            for split in SPLITS:
                # label 0 = a mask without crack pixels: worth knowing, and free to count
                crack_free = self.class_counts(split)[0]
                lines.append(f"  {split:<5} {len(self.splits[split]):>7,} photos"
                             + (f"  ({crack_free:,} without crack pixels)" if crack_free else ""))
            return "\n".join(lines)
        for split in SPLITS:
            counts = self.class_counts(split)
            lines.append(f"  {split:<5} {len(self.splits[split]):>7,} images  "
                         f"cracked {counts[1]:,}  uncracked {counts[0]:,}")
        weights = self.class_weights("train")
        lines.append(f"  class weights (train): 0 -> {weights[0]:.3f}, 1 -> {weights[1]:.3f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "version": MANIFEST_VERSION, "task": self.task, "root": self.root,
            "seed": self.seed, "fractions": self.fractions,
            "class_counts": {s: self.class_counts(s) for s in SPLITS},
            "class_weights": {s: self.class_weights(s) for s in SPLITS},
            "extra": self.extra,
            "splits": {s: [x.to_dict() for x in self.splits[s]] for s in SPLITS},
        }

    def save(self, path: str | Path) -> Path:
        """Write the manifest as JSON, atomically."""
        return write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(
                splits={s: [Sample.from_dict(x) for x in data["splits"][s]] for s in SPLITS},
                seed=int(data["seed"]), fractions=dict(data["fractions"]),
                task=data.get("task", "detect"), root=data.get("root", ""),
                extra=data.get("extra", {}))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ManifestError(
                f"{path}: not a readable fisuras split manifest ({error})") from error


def split_dataset(desc: DatasetDescription, *, seed: int = 42, val: float = 0.15,
                  test: float = 0.15, keys: Mapping[str, str] | None = None) -> Manifest:
    """Split ``desc`` into train/val/test; see the module docstring for the guarantees.

    Args:
        desc: the (checked) dataset.
        seed: split seed.
        val, test: fractions in [0, 1) with ``val + test < 1``.
        keys: image path -> duplicate-group key (``CheckReport.content_keys``). Files not in it
            are keyed by a hash of their bytes, or of their name when they don't exist.

    Example:
        >>> m = split_dataset(desc, seed=42)       # doctest: +SKIP
        >>> m.save("runs/r1/split.json")            # doctest: +SKIP
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"split fractions must satisfy 0 <= val, test and val + test < 1; "
                         f"got val={val}, test={test}")
    keys = keys or {}
    splits: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    for sample in desc.samples:
        key = keys.get(sample.image) or file_key(sample.image)
        splits[assign_split(key, seed, val=val, test=test)].append(sample)
    return Manifest(splits=splits, seed=seed, fractions={"val": val, "test": test},
                    task=desc.task, root=desc.root)


def assign_split(key: str, seed: int, *, val: float, test: float) -> str:
    """The split of one key: a pure function of (seed, key, fractions).

    Example:
        >>> assign_split("abc", 42, val=0.15, test=0.15) in ("train", "val", "test")
        True
    """
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    if u < test:
        return "test"
    return "val" if u < test + val else "train"


def file_key(path: str) -> str:
    """Hash of the file's bytes (same bytes -> same key), or of its name if it can't be read."""
    try:
        return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()
    except OSError:
        return "name:" + str(path)


def _stratum(sample: Sample) -> str:
    return f"{sample.label}/{sample.surface or '-'}"
