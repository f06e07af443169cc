"""inspect_dataset: counts, imbalance, sizes, problems, and a PNG grid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from fisuras.data import inspect_dataset
from tests.data.helpers import make_class_tree, write_image


def test_counts_sizes_problems_and_grid(tmp_path: Path):
    root = make_class_tree(tmp_path / "data", {"D/CD": 1, "D/UD": 0, "W/UW": 0}, n_per_folder=3)
    write_image(root / "D" / "UD" / "big.jpg", seed=50, size=(80, 100))
    (root / "W" / "UW" / "notes.txt").write_text("x")
    report = inspect_dataset(root, str(tmp_path / "grid.png"), n_per_class=2)
    assert report.class_counts == {"uncracked": 7, "cracked": 3}
    assert report.surface_counts == {"deck": {"uncracked": 4, "cracked": 3},
                                     "wall": {"uncracked": 3, "cracked": 0}}
    assert abs(report.imbalance - 7 / 3) < 1e-9
    assert report.size_min == (40, 48) and report.size_max == (80, 100)
    assert report.problem_counts == {"not_image": 1}
    text = report.to_text()
    assert "2.33:1" in text and "not_image 1" in text and "80x100" in text
    grid = Image.open(tmp_path / "grid.png")
    assert grid.width > 200 and grid.height > 100


def test_segmentation_report_on_real_sample(shared_data: Path, tmp_path: Path):
    report = inspect_dataset(shared_data / "seg_deepcrack", str(tmp_path / "g.png"), check=False)
    assert report.task == "segment" and report.n_images == 30
    assert report.size_median == (128, 181)
    # the README: 9.0 % crack pixels overall in this sample
    assert 0.03 < report.crack_fraction["median"] < 0.2
    assert (tmp_path / "g.png").stat().st_size > 1000


def _spoil(shared_data: Path, tmp_path: Path) -> Path:
    """A copy of the real DeepCrack sample with a non-image photo and a truncated mask."""
    root = Path(shutil.copytree(shared_data / "seg_deepcrack", tmp_path / "seg_deepcrack"))
    photo = sorted((root / "images").iterdir())[0]
    photo.write_bytes(b"<html>404 Not Found</html>")
    mask = sorted((root / "masks").iterdir())[2]
    mask.write_bytes(mask.read_bytes()[:300])
    return root


@pytest.mark.parametrize("check", [True, False])
def test_undecodable_files_are_listed_and_the_inspection_goes_on(shared_data: Path,
                                                                  tmp_path: Path, check: bool):
    root = _spoil(shared_data, tmp_path)
    photo = sorted((root / "images").iterdir())[0].name
    mask = sorted((root / "masks").iterdir())[2].name
    report = inspect_dataset(root, str(tmp_path / "g.png"), check=check)
    assert report.n_images == 30 and report.size_median == (128, 181)
    assert report.problem_counts == {"unreadable": 1, "not_image": 1}
    assert 0.03 < report.crack_fraction["median"] < 0.2  # from the 28 readable pairs
    text = report.to_text()
    assert f"not_image       images/{photo}: content is not an image" in text
    assert f"unreadable      masks/{mask}: image file is truncated" in text
    assert (tmp_path / "g.png").stat().st_size > 1000
