"""Read crack datasets as they lie on disk into one :class:`DatasetDescription`.

Layouts recognised (``read_dataset`` picks the first that fits):

* segmentation pairs: ``ROOT/images/<stem>.jpg`` + ``ROOT/masks/<stem>.png`` (masks may be png,
  jpg or bmp and may carry a ``_mask``/``_gt``/``_label`` suffix);
* several segmentation sets side by side: ``ROOT/seg_a/{images,masks}``, ``ROOT/seg_b/...``;
  each sub-folder becomes its own ``group``;
* SDNET2018: ``ROOT/{D,P,W}/{CD,UD,CP,UP,CW,UW}`` (also ``Decks/Pavements/Walls``, and class
  folders such as ``Cracked``/``Non-cracked``); the surface is recorded per image;
* two class folders: ``Positive/Negative``, ``cracked/uncracked``, ``crack/no_crack``, ``1/0``...
  When the names don't say which is cracked, pass ``class_map={"folder": 1, "other": 0}``.

Readers only look at names (and read segmentation masks to label images crack / no crack);
structural problems they see (non-image files, empty folders, unpaired images and masks) go into
``DatasetDescription.problems``; ``check.check_dataset`` looks inside the files.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fisuras.data.dataset import (
    TASKS,
    DatasetDescription,
    DatasetLayoutError,
    Problem,
    Sample,
)
from fisuras.data.images import has_image_suffix, is_ignored, read_mask

IMAGE_DIR_NAMES = ("images", "image", "imgs")
MASK_DIR_NAMES = ("masks", "mask", "gt", "groundtruth", "ground_truth")
MASK_STEM_SUFFIXES = ("_mask", "-mask", "_gt", "_label", "_labels", "_seg")
SURFACE_NAMES = {
    "d": "deck", "deck": "deck", "decks": "deck",
    "p": "pavement", "pavement": "pavement", "pavements": "pavement",
    "w": "wall", "wall": "wall", "walls": "wall",
}
CRACKED_NAMES = frozenset({
    "positive", "pos", "cracked", "crack", "cracks", "with_crack", "with_cracks", "1", "yes",
    "true", "defect", "defective", "c",
})
UNCRACKED_NAMES = frozenset({
    "negative", "neg", "uncracked", "non_cracked", "noncracked", "not_cracked", "no_crack",
    "nocrack", "non_crack", "noncrack", "no_cracks", "without_crack", "without_cracks", "uncrack",
    "0", "no", "false", "intact", "sound", "normal", "u",
})
_SDNET_CLASS = re.compile(r"^(?P<c>[cu])[dpw]$")


def read_dataset(path: str | Path, task: str | None = None,
                 class_map: Mapping[str, int] | None = None) -> DatasetDescription:
    """Read the dataset at ``path``; the layout is detected from folder names.

    Args:
        path: dataset root folder.
        task: "detect" or "segment"; ``None`` takes the layout's own task. "detect" on
            segmentation pairs gives image-level labels (1 when the mask has crack pixels).
            "segment" on a folder of several sets reads only the segmentation sets.
        class_map: explicit ``{folder name: 0 or 1}`` for class-folder layouts whose names are
            ambiguous; every class folder under ``path`` must be named in it.

    Raises:
        DatasetLayoutError: unknown or ambiguous layout, or no images at all.

    Example:
        >>> desc = read_dataset("/data/cls_metu")  # doctest: +SKIP
        >>> desc.task, desc.samples[0].label        # doctest: +SKIP
        ('detect', 0)
    """
    root = Path(path).absolute()
    if not root.is_dir():
        raise DatasetLayoutError(f"{root}: not a folder")
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS} or None, got {task!r}")

    # A class or set folder that is a broken link is not a folder: say so, here or in the error.
    broken = _broken_links(root)
    try:
        if class_map is not None:
            layout_task, samples, problems = "detect", *_read_mapped_classes(root, class_map)
        elif (pair := _seg_pair_dirs(root)) is not None:
            layout_task, samples, problems = "segment", *_read_seg_set(*pair, group=root.name)
        elif seg_sets := [d for d in _subdirs(root) if _seg_pair_dirs(d) is not None]:
            layout_task, samples, problems = "segment", *_read_seg_sets(root, seg_sets, task)
        elif surfaces := _sdnet_surface_dirs(root):
            layout_task, samples, problems = "detect", *_read_sdnet(surfaces)
        else:
            layout_task, samples, problems = "detect", *_read_two_classes(root)
    except DatasetLayoutError as error:
        if not broken:
            raise
        raise DatasetLayoutError(f"{error} Broken links in {root}: " + "; ".join(
            f"{Path(p.path).name} ({p.detail})" for p in broken)) from None
    problems = broken + problems

    if task == "segment" and layout_task != "segment":
        raise DatasetLayoutError(
            f"{root}: task 'segment' needs images/ and masks/ folders, but this is a "
            "class-folder (detection) layout")
    if not samples:
        listed = "".join(f"\n  {p.kind}: {p.path} {p.detail}" for p in problems[:20])
        raise DatasetLayoutError(f"{root}: no usable images found{listed}")
    samples.sort(key=lambda s: (s.group, s.image))
    return DatasetDescription(task=task or layout_task, root=str(root), samples=samples,
                              problems=problems)


# --- folder helpers ------------------------------------------------------------------------

def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not is_ignored(p))


def _files_under(folder: Path) -> tuple[list[Path], list[Problem]]:
    """Every file below ``folder`` (recursively, through folder links), sorted, without hidden
    files or litter; and a problem for each link that leads nowhere or in a circle.

    Links to folders are followed once the folder's own tree is read, so a link into that tree
    (or above it) is a ``link_loop`` note, not a second copy of its files.
    """
    top = folder.resolve()
    files: list[Path] = []
    problems: list[Problem] = []
    folder_links: list[Path] = []
    seen: set[Path] = set()  # real paths of the folders read

    def walk(start: Path) -> None:
        pending = [start]
        while pending:
            current = pending.pop()
            real = current.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                entries = sorted(current.iterdir())
            except OSError as error:
                problems.append(Problem(str(current), "unreadable",
                                        f"cannot list the folder: {error}"))
                continue
            for entry in entries:
                if is_ignored(entry):
                    continue
                if entry.is_symlink() and not entry.exists():
                    problems.append(Problem(str(entry), "broken_link", _broken_link(entry)))
                elif entry.is_symlink() and entry.is_dir():
                    folder_links.append(entry)
                elif entry.is_dir():
                    pending.append(entry)
                elif entry.is_file():  # a link to a file reads as the file
                    files.append(entry)

    walk(folder)
    while folder_links:
        link = folder_links.pop(0)
        real = link.resolve()
        if real == top or real in top.parents:
            problems.append(Problem(str(link), "link_loop", f"leads back to {real}, which holds "
                                    "this folder; not followed"))
        elif real in seen:
            problems.append(Problem(str(link), "link_loop",
                                    f"leads to {real}, already read; not followed"))
        else:
            walk(link)
    return sorted(files), problems


def _broken_links(folder: Path) -> list[Problem]:
    """The entries of ``folder`` itself (not below it) that are links leading nowhere."""
    return [Problem(str(p), "broken_link", _broken_link(p)) for p in sorted(folder.iterdir())
            if p.is_symlink() and not p.exists() and not is_ignored(p)]


def _broken_link(link: Path) -> str:
    """Why a symbolic link gives nothing: its target is missing, or links lead in a circle."""
    try:
        target = os.readlink(link)
    except OSError:
        target = "?"
    try:
        link.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a loop this way
        return f"symbolic link loop (-> {target}); nothing to read"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return f"symbolic link loop (-> {target}); nothing to read"
    return f"dangling symbolic link: its target {target} does not exist"


def _find_child(folder: Path, names: Iterable[str]) -> Path | None:
    by_name = {p.name.lower(): p for p in _subdirs(folder)}
    return next((by_name[n] for n in names if n in by_name), None)


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _class_of(folder_name: str) -> int | None:
    """1 / 0 when a folder name says cracked / uncracked, else None."""
    name = _normalise(folder_name)
    if match := _SDNET_CLASS.match(name):
        return 1 if match["c"] == "c" else 0
    if name in CRACKED_NAMES:
        return 1
    if name in UNCRACKED_NAMES:
        return 0
    return None


def _read_class_folder(folder: Path, label: int, surface: str | None,
                       group: str) -> tuple[list[Sample], list[Problem]]:
    samples: list[Sample] = []
    files, problems = _files_under(folder)
    for file in files:
        if has_image_suffix(file):
            samples.append(Sample(str(file), label, surface, None, group))
        else:
            problems.append(Problem(str(file), "not_image",
                                    f"suffix {file.suffix or '(none)'!r} is not jpg/png/bmp"))
    if not samples:
        problems.append(Problem(str(folder), "empty_folder", "no jpg/png/bmp images inside"))
    return samples, problems


# --- detection layouts ------------------------------------------------------------------------

def _sdnet_surface_dirs(root: Path) -> list[tuple[str, Path]]:
    """[(surface, folder)] when every sub-folder of ``root`` is a surface folder, else []."""
    subdirs = _subdirs(root)
    surfaces = [(SURFACE_NAMES.get(_normalise(d.name)), d) for d in subdirs]
    if not subdirs or any(surface is None for surface, _ in surfaces):
        return []
    return surfaces  # type: ignore[return-value]


def _read_sdnet(surfaces: list[tuple[str, Path]]) -> tuple[list[Sample], list[Problem]]:
    samples: list[Sample] = []
    problems: list[Problem] = []
    for surface, surface_dir in surfaces:
        class_dirs = _subdirs(surface_dir)
        problems += _broken_links(surface_dir)
        unknown = [d.name for d in class_dirs if _class_of(d.name) is None]
        if unknown or not class_dirs:
            raise DatasetLayoutError(
                f"{surface_dir}: expected class folders such as C{surface_dir.name[0].upper()} "
                f"and U{surface_dir.name[0].upper()} (SDNET2018), found "
                f"{[d.name for d in class_dirs]}")
        for class_dir in class_dirs:
            found, trouble = _read_class_folder(class_dir, _class_of(class_dir.name), surface,
                                                surface_dir.name)
            samples += found
            problems += trouble
    return samples, problems


def _read_two_classes(root: Path) -> tuple[list[Sample], list[Problem]]:
    class_dirs = _subdirs(root)
    labels = {d.name: _class_of(d.name) for d in class_dirs}
    if len(class_dirs) != 2 or sorted(labels.values(), key=str) != [0, 1]:
        names = ", ".join(repr(d.name) for d in class_dirs) or "none"
        example = ", ".join(f"{d.name!r}: {1 - i}" for i, d in enumerate(class_dirs[:2]))
        raise DatasetLayoutError(
            f"{root}: not a known dataset layout. Sub-folders found: {names}. Expected "
            "images/ + masks/ (segmentation), D/P/W with CD/UD... (SDNET2018), or two class "
            "folders whose names say which is cracked (Positive/Negative, cracked/uncracked...). "
            f"Pass class_map to say which folder is cracked, e.g. class_map={{{example}}}.")
    return _read_mapped_classes(root, labels)


def _read_mapped_classes(root: Path, class_map: Mapping[str, int]
                         ) -> tuple[list[Sample], list[Problem]]:
    class_dirs = {d.name: d for d in _subdirs(root)}
    bad_values = {k: v for k, v in class_map.items() if v not in (0, 1)}
    missing = sorted(set(class_map) - set(class_dirs))
    unmapped = sorted(set(class_dirs) - set(class_map))
    if bad_values or missing or unmapped:
        raise DatasetLayoutError(
            f"{root}: class_map {dict(class_map)} does not fit the folders "
            f"{sorted(class_dirs)}: " + "; ".join(filter(None, [
                bad_values and f"labels must be 0 or 1, got {bad_values}",
                missing and f"no folder named {missing}",
                unmapped and f"folders not in class_map {unmapped}"])))
    samples: list[Sample] = []
    problems: list[Problem] = []
    for name, label in class_map.items():
        found, trouble = _read_class_folder(class_dirs[name], int(label), None, root.name)
        samples += found
        problems += trouble
    return samples, problems


# --- segmentation layouts -------------------------------------------------------------------

def _seg_pair_dirs(folder: Path) -> tuple[Path, Path] | None:
    images = _find_child(folder, IMAGE_DIR_NAMES)
    masks = _find_child(folder, MASK_DIR_NAMES)
    return (images, masks) if images is not None and masks is not None else None


def _read_seg_sets(root: Path, seg_sets: list[Path], task: str | None
                   ) -> tuple[list[Sample], list[Problem]]:
    others = [d.name for d in _subdirs(root) if d not in seg_sets]
    if others and task != "segment":
        raise DatasetLayoutError(
            f"{root}: mixes segmentation sets {[d.name for d in seg_sets]} with other folders "
            f"{others}. Point at one dataset, or pass task='segment' to read only the "
            "segmentation sets.")
    samples: list[Sample] = []
    problems: list[Problem] = []
    for folder in seg_sets:
        found, trouble = _read_seg_set(*_seg_pair_dirs(folder), group=folder.name)
        samples += found
        problems += trouble
    return samples, problems


def _pair_key(folder: Path, file: Path) -> str:
    """Relative path without suffix: ``images/a/001.jpg`` pairs with ``masks/a/001.png``."""
    return file.relative_to(folder).with_suffix("").as_posix()


def _read_seg_set(images_dir: Path, masks_dir: Path, group: str
                  ) -> tuple[list[Sample], list[Problem]]:
    image_files, problems = _files_under(images_dir)
    mask_files, mask_problems = _files_under(masks_dir)
    problems += mask_problems
    images: dict[str, Path] = {}
    for file in image_files:
        if has_image_suffix(file):
            images[_pair_key(images_dir, file)] = file
        else:
            problems.append(Problem(str(file), "not_image",
                                    f"suffix {file.suffix or '(none)'!r} is not jpg/png/bmp"))
    masks: dict[str, Path] = {}
    for file in mask_files:
        if not has_image_suffix(file):
            problems.append(Problem(str(file), "not_image",
                                    f"mask suffix {file.suffix or '(none)'!r} is not png/jpg/bmp"))
            continue
        key = _pair_key(masks_dir, file)
        if key not in images:  # also accept "<stem>_mask.png" and similar
            key = next((key[: -len(s)] for s in MASK_STEM_SUFFIXES
                        if key.endswith(s) and key[: -len(s)] in images), key)
        if key not in images:
            problems.append(Problem(str(file), "orphan_mask", f"no image named {key}.* in "
                                    f"{images_dir}"))
        elif key in masks:
            problems.append(Problem(str(file), "orphan_mask",
                                    f"second mask for {images[key].name} (kept {masks[key].name})"))
        else:
            masks[key] = file
    for folder, files in ((images_dir, image_files), (masks_dir, mask_files)):
        if not any(has_image_suffix(p) for p in files):
            problems.append(Problem(str(folder), "empty_folder", "no jpg/png/bmp files inside"))

    paired = [(images[k], masks[k]) for k in images if k in masks]
    problems += [Problem(str(images[k]), "missing_mask", f"no mask named {k}.* in {masks_dir}")
                 for k in images if k not in masks]
    with ThreadPoolExecutor(max_workers=4) as pool:  # PNG decoding releases the GIL
        labels = list(pool.map(_mask_label, (m for _, m in paired)))
    samples = [Sample(str(img), label, None, str(mask), group)
               for (img, mask), label in zip(paired, labels, strict=True)]
    return samples, problems


def _mask_label(mask: Path) -> int | None:
    """1 when the mask holds crack pixels, 0 when not, None when unreadable (check reports it)."""
    try:
        return int(read_mask(mask).any())
    except (OSError, ValueError, SyntaxError):
        return None
