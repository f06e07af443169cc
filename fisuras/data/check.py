"""Scan a dataset's files before training: unreadable, not images, bad pairs, duplicates, modes.

``check_dataset`` decodes every file once (Pillow, a few threads) and returns a
:class:`CheckReport`; ``apply_check`` then either stops with one clear report
(:class:`DataProblemsError`) or, with ``skip_bad=True``, leaves the bad files out.

Unusual modes (grayscale, RGBA, CMYK, palette, 16-bit) are *not* problems: the pipeline converts
them to 8-bit RGB (as TensorFlow's decoder does); they are listed as ``"converted"`` notes.
Photos with an EXIF orientation other than 1 get an ``"exif_rotated"`` note (training reads
pixels as stored, ``predict`` turns them upright), and masks with values other than 0 and 255 a
``"mask_values"`` note (they are read by a threshold). Notes never stop training.

Duplicates: files with the same bytes or the same decoded pixels form one group. The first file
(by path) is kept; the others are ``"duplicate"`` problems. If a group's files carry different
labels, every file of it is a ``"label_conflict"``. ``CheckReport.content_keys`` gives every file
its group's key so that ``split_dataset`` keeps a group in one split.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fisuras.data.dataset import PROBLEM_KINDS, DatasetDescription, Problem
from fisuras.data.images import binarize_mask, to_uint8_array, unusual_mode
from fisuras.errors import FisurasError
from fisuras.files import atomic_write_text

# Container formats TensorFlow's decode_image reads (MPO = the JPEG phones write).
DECODABLE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "GIF"})
EXIF_ORIENTATION = 0x0112
# How a photo with EXIF orientation N is stored, relative to upright (EXIF 2.3, tag 274).
STORED_TURNED = {
    2: "mirrored left-right", 3: "upside down (turned 180°)", 4: "mirrored top-bottom",
    5: "turned a quarter and mirrored", 6: "turned a quarter (upright after 90° clockwise)",
    7: "turned a quarter and mirrored", 8: "turned a quarter (upright after 90° anticlockwise)",
}
QUARTER_TURNS = frozenset({5, 6, 7, 8})  # orientations that swap width and height


class DataProblemsError(FisurasError, ValueError):
    """Blocking data problems were found; ``.report`` holds the full :class:`CheckReport`."""

    def __init__(self, report: CheckReport):
        super().__init__(report.to_text())
        self.report = report


@dataclass
class CheckReport:
    """What the scan found. ``ok`` is True when nothing blocks training."""

    root: str
    n_files: int
    problems: list[Problem]
    content_keys: dict[str, str] = field(default_factory=dict, repr=False)
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def counts(self) -> dict[str, int]:
        """Problems per kind, in the fixed order of ``PROBLEM_KINDS``."""
        found = Counter(p.kind for p in self.problems)
        return {kind: found[kind] for kind in PROBLEM_KINDS if found[kind]}

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.blocking]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def to_text(self, max_per_kind: int = 20) -> str:
        """One readable report: summary counts, then the files (a few per kind)."""
        n_block = len(self.blocking)
        lines = [f"Data check of {self.root}: {self.n_files:,} files scanned, "
                 f"{n_block:,} blocking problem(s), {len(self.problems) - n_block:,} note(s)."]
        for kind, count in self.counts.items():
            lines.append(f"  {kind:<15}{count:>7,}  {PROBLEM_KINDS[kind]}")
        lines += self.problem_lines(max_per_kind)
        if not self.ok:
            lines.append("Training stops on these problems. Fix or remove the files, or pass "
                         "--skip-bad to leave them out (the run's data_report.json then lists "
                         "them); `fisuras data check DATA --report FILE` saves the full list.")
        return "\n".join(lines)

    def problem_lines(self, max_per_kind: int = 20) -> list[str]:
        """One line per problem, ``kind  file: what is wrong`` (a few per kind)."""
        lines = []
        for kind in self.counts:
            of_kind = [p for p in self.problems if p.kind == kind]
            for p in of_kind[:max_per_kind]:
                lines.append(f"{kind:<15} {self._short(p.path)}: {p.detail}")
            if len(of_kind) > max_per_kind:
                lines.append(f"{kind:<15} ... and {len(of_kind) - max_per_kind:,} more "
                             "(all are in the JSON report: data check --report)")
        return lines

    @property
    def left_out(self) -> list[str]:
        """The files ``apply_check(skip_bad=True)`` leaves out: each with a blocking problem."""
        return list(dict.fromkeys(p.path for p in self.blocking if p.kind != "empty_folder"))

    def skipped_line(self, report_path: str | Path) -> str | None:
        """The console line for a ``--skip-bad`` run that left files out (None when none)."""
        if not self.left_out:
            return None
        return (f"left out {len(self.left_out):,} bad file(s) (--skip-bad); list in "
                f"{report_path}")

    def _short(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return path

    def to_dict(self) -> dict:
        return {"root": self.root, "n_files": self.n_files, "ok": self.ok,
                "counts": self.counts, "problems": [asdict(p) for p in self.problems]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def save(self, path: str | Path) -> Path:
        """Write the JSON report atomically."""
        return atomic_write_text(path, self.to_json())


@dataclass(frozen=True)
class FileScan:
    """What one decode of one file tells us (``scan_file``)."""

    path: str
    size: tuple[int, int] | None = None  # (height, width)
    byte_hash: str | None = None
    pixel_hash: str | None = None
    problem: Problem | None = None
    note: Problem | None = None
    orientation: int = 1  # EXIF orientation; 1 = stored upright


def scan_file(path: str, *, want_hashes: bool = True,
              second_decoder: Callable[[bytes], object] | None = None,
              is_mask: bool = False) -> FileScan:
    """Decode one file fully with Pillow; report why it cannot be used, if so.

    ``second_decoder`` (e.g. TensorFlow's) is tried too: a few corrupt JPEGs that Pillow
    decodes with a warning make TensorFlow fail, which would stop training mid-epoch.
    An image's note says what is unusual about it (mode, EXIF orientation); a mask's
    (``is_mask``) says when it holds values other than 0 and 255.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        return FileScan(path, problem=Problem(path, "unreadable", f"cannot read file: {error}"))
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # full decode: raises on truncated data
            fmt, mode = image.format, unusual_mode(image)
            pixels = to_uint8_array(image) if want_hashes or is_mask else None
            size = (image.height, image.width)
            orientation = _orientation(image)
    except UnidentifiedImageError:
        return FileScan(path, problem=Problem(path, "not_image", "content is not an image"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        return FileScan(path, problem=Problem(path, "unreadable", str(error) or type(error)
                                               .__name__))
    if fmt not in DECODABLE_FORMATS:
        return FileScan(path, problem=Problem(
            path, "not_image", f"{fmt} image; TensorFlow reads only JPEG, PNG, BMP, GIF"))
    if second_decoder is not None:
        try:
            second_decoder(data)
        except Exception as error:  # noqa: BLE001 - any decoder failure means "unreadable"
            return FileScan(path, problem=Problem(
                path, "unreadable", f"TensorFlow cannot decode it: {_clean_error(error)}"))
    if is_mask:  # grayscale or palette is a mask's normal form: no "converted" note
        note = _mask_values_note(path, pixels)
    elif orientation != 1:
        note = Problem(path, "exif_rotated", _exif_detail(orientation)
                       + (f"; also {mode} -> RGB" if mode else ""))
    else:
        note = Problem(path, "converted", f"{mode} -> RGB") if mode else None
    if not want_hashes:
        return FileScan(path, size, note=note, orientation=orientation)
    pixel_hash = hashlib.blake2b(str(pixels.shape).encode() + pixels.tobytes(),
                                 digest_size=16).hexdigest()
    byte_hash = hashlib.blake2b(data, digest_size=16).hexdigest()
    return FileScan(path, size, byte_hash, pixel_hash, note=note, orientation=orientation)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1..8), 1 when absent or unreadable."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make the photo "bad"
        return 1
    return value if isinstance(value, int) and value in STORED_TURNED else 1


def _exif_detail(orientation: int) -> str:
    return (f"EXIF orientation {orientation}: stored {STORED_TURNED[orientation]}; training "
            "and evaluate read the pixels as stored, while predict turns the photo upright. "
            "Save it upright (pixels turned, orientation 1) so that both see the same")


def _mask_values_note(path: str, pixels: np.ndarray) -> Problem | None:
    """A note when a mask is not two-valued 0/255 (0/1 masks are a convention, not a note)."""
    brightest = pixels.max(axis=-1) if pixels.ndim == 3 else pixels
    if brightest.size == 0 or brightest.max() <= 1:
        return None
    other = (brightest != 0) & (brightest != 255)
    n_other = int(np.count_nonzero(other))
    if not n_other:
        return None
    values = np.unique(brightest[other])
    crack = int(np.count_nonzero(binarize_mask(pixels) & other))
    return Problem(path, "mask_values",
                   f"{n_other:,} pixel(s) ({n_other / brightest.size:.1%}) hold "
                   f"{len(values)} value(s) other than 0 and 255 ({values[0]}..{values[-1]}); "
                   f"read with the threshold value > 127 = crack, which makes {crack:,} of "
                   "them crack")


def check_dataset(desc: DatasetDescription, *, find_duplicates: bool = True,
                  workers: int = 2, verify_with_tensorflow: bool = False) -> CheckReport:
    """Decode every image and mask of ``desc`` and report what is wrong with them.

    The structural problems the reader already found (``desc.problems``) are included.

    Args:
        desc: from ``read_dataset``.
        find_duplicates: hash bytes and decoded pixels to find exact duplicates.
        workers: decoding threads (Pillow releases the GIL while decoding).
        verify_with_tensorflow: also decode every file with ``tf.io.decode_image``, as the
            pipeline will (about twice the time; use it before training).

    Example:
        >>> report = check_dataset(read_dataset("/data/sdnet"))  # doctest: +SKIP
        >>> report.ok, report.counts                              # doctest: +SKIP
        (False, {'unreadable': 1, 'duplicate': 3})
    """
    images = [s.image for s in desc.samples]
    masks = [s.mask for s in desc.samples if s.mask is not None]
    decoder = _tensorflow_decoder() if verify_with_tensorflow else None
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        image_scans = list(pool.map(lambda p: scan_file(
            p, want_hashes=find_duplicates, second_decoder=decoder), images))
        mask_scans = {s.path: s for s in pool.map(lambda p: scan_file(
            p, want_hashes=False, second_decoder=decoder, is_mask=True), masks)}
    by_image = {scan.path: scan for scan in image_scans}

    problems = list(desc.problems)
    for scan in image_scans:
        problems += [p for p in (scan.problem, scan.note) if p is not None]
    for scan in mask_scans.values():
        problems += [p for p in (scan.problem, scan.note) if p is not None]
    for sample in desc.samples:
        mask_scan = mask_scans.get(sample.mask) if sample.mask else None
        image_scan = by_image[sample.image]
        image_size = image_scan.size
        if mask_scan and mask_scan.size and image_size and mask_scan.size != image_size:
            detail = f"mask {_hw(mask_scan.size)} but image {Path(sample.image).name} is " \
                     f"{_hw(image_size)}"
            if image_scan.orientation in QUARTER_TURNS and mask_scan.size == image_size[::-1]:
                detail += (f" as stored; its EXIF orientation {image_scan.orientation} turns it "
                           f"to {_hw(mask_scan.size)} upright, the mask's size: the mask was "
                           "drawn on the upright photo, but training reads pixels as stored. "
                           "Save the photo upright (pixels turned, orientation 1)")
            problems.append(Problem(sample.mask, "size_mismatch", detail))
    keys: dict[str, str] = {}
    if find_duplicates:
        labels = {s.image: s.label for s in desc.samples}
        dup_problems, keys = _duplicates(image_scans, labels)
        problems += dup_problems
    return CheckReport(
        root=desc.root, n_files=len(images) + len(masks), problems=_unique(problems),
        content_keys=keys, image_sizes={s.path: s.size for s in image_scans if s.size})


def apply_check(desc: DatasetDescription, report: CheckReport,
                skip_bad: bool) -> DatasetDescription:
    """Stop on blocking problems, or (``skip_bad=True``) return ``desc`` without the bad files.

    The returned description carries ``report.problems`` so the run folder can keep them.

    Raises:
        DataProblemsError: ``skip_bad`` is False and the report has blocking problems.
    """
    if not report.ok and not skip_bad:
        raise DataProblemsError(report)
    bad = {p.path for p in report.blocking}
    kept = [s for s in desc.samples if s.image not in bad and s.mask not in bad]
    return desc.with_samples(kept, problems=report.problems)


def _tensorflow_decoder() -> Callable[[bytes], object]:
    import tensorflow as tf  # only here: the rest of the check works without TensorFlow

    return lambda data: tf.io.decode_image(data, channels=3, expand_animations=False)


def _clean_error(error: Exception) -> str:
    """TensorFlow's message without its ``{{function_node ...}}`` and ``[Op:...]`` wrapping."""
    text = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]", "", str(error)).strip()
    return (text or type(error).__name__)[:200]


def _hw(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


def _unique(problems: Iterable[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _duplicates(scans: list[FileScan], labels: dict[str, int | None]
                ) -> tuple[list[Problem], dict[str, str]]:
    """Group files sharing bytes or pixels (union-find); flag all but the first of each group."""
    parent: dict[str, str] = {}

    def find(path: str) -> str:
        while parent[path] != path:
            parent[path] = parent[parent[path]]
            path = parent[path]
        return path

    first_with: dict[str, str] = {}
    readable = sorted((s for s in scans if s.byte_hash), key=lambda s: s.path)
    for scan in readable:
        parent[scan.path] = scan.path
        for digest in (f"b{scan.byte_hash}", f"p{scan.pixel_hash}"):
            other = first_with.setdefault(digest, scan.path)
            a, b = sorted((find(other), find(scan.path)))
            parent[b] = a  # the smallest path stays the root: the kept file
    groups: dict[str, list[FileScan]] = {}
    for scan in readable:
        groups.setdefault(find(scan.path), []).append(scan)

    problems: list[Problem] = []
    keys: dict[str, str] = {}
    for root, members in groups.items():
        # Key = smallest byte hash of the group: no dependence on names, stable across libraries.
        key = min(m.byte_hash for m in members)
        keys.update({m.path: key for m in members})
        if len(members) == 1:
            continue
        if len({labels.get(m.path) for m in members}) > 1:
            problems += [Problem(m.path, "label_conflict",
                                 f"same image in {len(members)} files with different labels: "
                                 + ", ".join(Path(o.path).name for o in members if o is not m))
                         for m in members]
            continue
        kept = next(m for m in members if m.path == root)
        for m in members:
            if m is not kept:
                how = "bytes" if m.byte_hash == kept.byte_hash else "pixels"
                problems.append(Problem(m.path, "duplicate", f"same {how} as {kept.path}"))
    return problems, keys
