"""``fisuras data inspect PATH``: what is in a dataset, in numbers and in one picture.

Counts per class and surface, class imbalance, image sizes, crack-pixel share (segmentation),
the problems the check finds (each file and what is wrong with it; a bad file never stops the
inspection), and a PNG grid of random samples per class (masks overlaid in red).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from fisuras.data.check import CheckReport, check_dataset, scan_file
from fisuras.data.dataset import CLASS_NAMES, DatasetDescription, Problem
from fisuras.data.images import image_size, read_mask, read_rgb
from fisuras.data.readers import read_dataset
from fisuras.files import atomic_write

THUMB = 128  # thumbnail side in the grid, pixels


@dataclass
class InspectReport:
    """Numbers about one dataset (see ``to_text``)."""

    root: str
    task: str
    n_images: int
    class_counts: dict[str, int]
    surface_counts: dict[str, dict[str, int]]  # surface (or "-") -> class -> n
    group_counts: dict[str, int]
    imbalance: float  # majority / minority class count (inf if a class is missing)
    size_min: tuple[int, int]  # (height, width)
    size_median: tuple[int, int]
    size_max: tuple[int, int]
    problem_counts: dict[str, int] = field(default_factory=dict)
    problems_text: str = ""
    problem_lines: list[str] = field(default_factory=list)  # "kind  file: what is wrong"
    crack_fraction: dict[str, float] = field(default_factory=dict)  # min / median / max
    grid_png: str | None = None

    def to_text(self) -> str:
        lines = [f"{self.root}: {self.task}, {self.n_images:,} images"]
        balance = (f"imbalance {self.imbalance:.2f}:1" if np.isfinite(self.imbalance)
                   else "one class only")
        lines.append("  classes: " + ", ".join(f"{k} {v:,}" for k, v in
                                              self.class_counts.items()) + f"  ({balance})")
        if any(s != "-" for s in self.surface_counts):
            for surface, counts in self.surface_counts.items():
                lines.append(f"  {surface:<9} " + ", ".join(f"{k} {v:,}"
                                                            for k, v in counts.items()))
        if len(self.group_counts) > 1:
            lines.append("  groups: " + ", ".join(f"{k} {v:,}" for k, v in
                                                 self.group_counts.items()))
        lines.append(f"  image size (HxW): min {_hw(self.size_min)}, median "
                     f"{_hw(self.size_median)}, max {_hw(self.size_max)}"
                     if self.size_max != (0, 0) else "  image size: no readable image")
        if self.crack_fraction:
            cf = self.crack_fraction
            lines.append(f"  crack pixels per image: min {cf['min']:.2%}, median "
                         f"{cf['median']:.2%}, max {cf['max']:.2%}")
        if self.problem_counts:
            lines.append("  problems: " + ", ".join(f"{k} {v:,}" for k, v in
                                                   self.problem_counts.items()))
            lines += [f"    {line}" for line in self.problem_lines]
        elif self.problems_text:
            lines.append("  problems: none")
        if self.grid_png:
            lines.append(f"  sample grid: {self.grid_png}")
        return "\n".join(lines)

    def to_json(self) -> str:
        data = dict(self.__dict__)
        data["imbalance"] = None if np.isinf(self.imbalance) else self.imbalance
        return json.dumps(data, indent=1)


def inspect_dataset(path_or_desc: str | Path | DatasetDescription, out_png: str | None = None,
                    *, n_per_class: int = 8, seed: int = 0, check: bool = True) -> InspectReport:
    """Summarise a dataset; optionally draw a sample grid to ``out_png``.

    Args:
        path_or_desc: dataset folder (read with ``read_dataset``) or a description.
        out_png: where to write the grid of samples per class (None: no picture).
        n_per_class: samples per class in the grid.
        seed: which samples are shown.
        check: also run ``check_dataset`` (decodes every file) and report its problems.

    Example:
        >>> print(inspect_dataset("/data/seg_cfd", "cfd.png").to_text())  # doctest: +SKIP
    """
    desc = path_or_desc if isinstance(path_or_desc, DatasetDescription) \
        else read_dataset(path_or_desc)
    report = check_dataset(desc) if check else _read_headers(desc)
    # Bad files are listed in the report; the numbers are about the files that can be read.
    heights, widths = [], []
    for s in desc.samples:
        if s.image in report.image_sizes:
            heights.append(report.image_sizes[s.image][0])
            widths.append(report.image_sizes[s.image][1])
    classes = Counter(s.label for s in desc.samples)
    class_counts = {CLASS_NAMES[c]: classes[c] for c in (0, 1)}
    surfaces: dict[str, Counter] = {}
    for s in desc.samples:
        surfaces.setdefault(s.surface or "-", Counter())[s.label] += 1
    surface_counts = {k: {CLASS_NAMES[c]: v[c] for c in (0, 1)}
                      for k, v in sorted(surfaces.items())}
    low, high = min(class_counts.values()), max(class_counts.values())
    crack_fraction = {}
    if desc.task == "segment" and all(s.mask for s in desc.samples):
        shares = _crack_shares(desc, report)
        if shares:
            crack_fraction = {"min": min(shares), "median": float(np.median(shares)),
                              "max": max(shares)}
    result = InspectReport(
        root=desc.root, task=desc.task, n_images=len(desc.samples), class_counts=class_counts,
        surface_counts=surface_counts, group_counts=dict(Counter(s.group for s in desc.samples)),
        imbalance=high / low if low else float("inf"),
        size_min=(min(heights, default=0), min(widths, default=0)),
        size_median=(int(np.median(heights)), int(np.median(widths))) if heights else (0, 0),
        size_max=(max(heights, default=0), max(widths, default=0)),
        problem_counts=report.counts, problems_text=report.to_text() if check else "",
        problem_lines=report.problem_lines(), crack_fraction=crack_fraction)
    if out_png:
        result.grid_png = str(draw_sample_grid(desc, out_png, n_per_class=n_per_class,
                                               seed=seed))
    return result


def _read_headers(desc: DatasetDescription) -> CheckReport:
    """The quick look (``check=False``): image sizes from the headers; a file whose header
    cannot be read gets the check's own verdict (``scan_file``), and the inspection goes on."""
    problems = list(desc.problems)
    sizes: dict[str, tuple[int, int]] = {}
    for sample in desc.samples:
        try:
            sizes[sample.image] = image_size(sample.image)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            problems.append(scan_file(sample.image, want_hashes=False).problem
                            or Problem(sample.image, "unreadable", "header cannot be read"))
    return CheckReport(root=desc.root, n_files=len(desc.samples), problems=problems,
                       image_sizes=sizes)


def _crack_shares(desc: DatasetDescription, report: CheckReport) -> list[float]:
    """Crack-pixel share of each readable mask; an unreadable one is added to ``report``."""
    bad = {p.path for p in report.blocking}
    shares = []
    for sample in desc.samples:
        if sample.mask in bad or sample.image in bad:
            continue
        try:
            shares.append(float(read_mask(sample.mask).mean()))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            report.problems.append(
                scan_file(sample.mask, want_hashes=False, is_mask=True).problem
                or Problem(sample.mask, "unreadable", "mask cannot be decoded"))
    return shares


def draw_sample_grid(desc: DatasetDescription, out_png: str | Path, *, n_per_class: int = 8,
                     seed: int = 0) -> Path:
    """One row per class of random thumbnails (masks overlaid in red); written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global state
    from matplotlib.figure import Figure

    rng = np.random.default_rng(seed)
    rows = []
    for label in (1, 0, None):  # None: the mask is unreadable (listed among the problems)
        members = [s for s in desc.samples if s.label == label]
        if members:
            picked = rng.choice(len(members), min(n_per_class, len(members)), replace=False)
            rows.append((label, [members[i] for i in sorted(picked)]))
    n_cols = max(len(r) for _, r in rows)
    figure = Figure(figsize=(0.4 + 1.6 * n_cols, 0.5 + 1.7 * len(rows)), dpi=100)
    FigureCanvasAgg(figure)
    for r, (label, members) in enumerate(rows):
        for c, sample in enumerate(members):
            axes = figure.add_subplot(len(rows), n_cols, r * n_cols + c + 1)
            axes.set_xticks([])
            axes.set_yticks([])
            axes.imshow(_thumbnail(sample))
            axes.set_title(sample.surface or sample.group, fontsize=7)
            if c == 0:
                axes.set_ylabel("unknown" if label is None else CLASS_NAMES[label],
                                fontsize=9)
    figure.suptitle(f"{Path(desc.root).name}: {desc.task}, {len(desc.samples):,} images",
                    fontsize=9)
    figure.tight_layout()
    return atomic_write(out_png, lambda tmp: figure.savefig(tmp, format="png"))


def _thumbnail(sample) -> np.ndarray:
    try:
        pixels = read_rgb(sample.image)
    except (OSError, ValueError, SyntaxError):
        return np.zeros((THUMB, THUMB, 3), np.uint8)
    if sample.mask:
        try:
            mask = read_mask(sample.mask)
            if mask.shape == pixels.shape[:2]:
                red = np.array([255, 0, 0], np.float32)
                pixels = np.where(mask[..., None], 0.4 * pixels + 0.6 * red, pixels)
        except (OSError, ValueError, SyntaxError):
            pass
    image = Image.fromarray(pixels.astype(np.uint8))
    image.thumbnail((THUMB, THUMB))
    return np.asarray(image)


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
