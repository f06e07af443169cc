"""Synthetic data: deterministic, exact masks, darker cracks, the right folder tree."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from fisuras.data import SURFACES, read_dataset, render_crack_sample, synthesize


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synthesize(out, n_per_class_per_surface=2, n_seg=4, image_size=64, seed=3,
               seg_uncracked_fraction=0.0)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".json"}


def test_same_seed_writes_identical_bytes(synth_dir: Path, tmp_path: Path):
    synthesize(tmp_path / "again", n_per_class_per_surface=2, n_seg=4, image_size=64, seed=3,
               seg_uncracked_fraction=0.0)
    assert _files(synth_dir) == _files(tmp_path / "again")
    synthesize(tmp_path / "other", n_per_class_per_surface=2, n_seg=4, image_size=64, seed=4,
               seg_uncracked_fraction=0.0)
    other = _files(tmp_path / "other")
    assert other.keys() == _files(synth_dir).keys()
    assert all(other[k] != v for k, v in _files(synth_dir).items())


def test_more_files_keep_the_first_ones(synth_dir: Path, tmp_path: Path):
    synthesize(tmp_path / "more", n_per_class_per_surface=3, n_seg=4, image_size=64, seed=3,
               seg_uncracked_fraction=0.0)
    more = _files(tmp_path / "more")
    assert all(more[k] == v for k, v in _files(synth_dir).items())


def test_folder_tree_reads_as_sdnet_and_seg(synth_dir: Path):
    names = {p.relative_to(synth_dir / "sdnet").as_posix()
             for p in (synth_dir / "sdnet").glob("*/*")}
    assert names == {"D/CD", "D/UD", "P/CP", "P/UP", "W/CW", "W/UW"}
    desc = read_dataset(synth_dir / "sdnet")
    assert Counter((s.surface, s.label) for s in desc.samples) == {
        (surface, label): 2 for surface in SURFACES for label in (0, 1)}
    seg = read_dataset(synth_dir / "seg")
    assert seg.task == "segment" and len(seg.samples) == 4 and not seg.problems
    summary = json.loads((synth_dir / "synth.json").read_text())
    assert summary["counts"]["D/CD"] == 2 and summary["counts"]["seg"] == 4


def test_masks_are_exact_binary_and_match_the_render(synth_dir: Path):
    from fisuras.data.synth import SURFACES as order

    seg = read_dataset(synth_dir / "seg")
    for sample in seg.samples:
        values = np.unique(np.asarray(Image.open(sample.mask)))
        assert set(values.tolist()) <= {0, 255}
        assert sample.label == 1
    # the written mask is exactly the rendered one (same per-file random stream)
    rng = np.random.default_rng([3, 2])
    surfaces = rng.integers(0, 3, 4)
    _, mask = render_crack_sample(np.random.default_rng([3, 3, 0]), 64, True,
                                  order[surfaces[0]])
    written = np.asarray(Image.open(synth_dir / "seg" / "masks" / "00000.png")) > 0
    np.testing.assert_array_equal(mask, written)


@pytest.mark.parametrize("surface", SURFACES)
def test_crack_pixels_are_darker_than_their_surroundings(surface: str):
    for seed in range(4):
        image, mask = render_crack_sample(np.random.default_rng(seed), 96, True, surface)
        assert mask.any() and 0.001 < mask.mean() < 0.4
        grey = image.astype(float).mean(axis=-1)
        ring = ndimage.binary_dilation(mask, iterations=3) & ~mask
        assert grey[mask].mean() < grey[ring].mean() - 3


def test_uncracked_images_have_empty_masks_and_vary():
    images = []
    for seed in range(3):
        image, mask = render_crack_sample(np.random.default_rng(seed), 48, False, "deck")
        assert image.shape == (48, 48, 3) and image.dtype == np.uint8 and not mask.any()
        images.append(image)
    assert not np.array_equal(images[0], images[1])


def test_unknown_surface_is_refused():
    with pytest.raises(ValueError, match="surface"):
        render_crack_sample(np.random.default_rng(0), 32, True, "roof")
