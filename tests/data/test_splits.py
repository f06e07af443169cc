"""Splits: deterministic, stratified, stable when files are added, duplicates kept together."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from fisuras.data import (
    DatasetDescription,
    Manifest,
    Sample,
    check_dataset,
    read_dataset,
    split_dataset,
)
from tests.data.helpers import make_class_tree


def _fake(n: int, start: int = 0) -> DatasetDescription:
    """n samples without files: 15% cracked, three surfaces (keys fall back to the path)."""
    samples = []
    for i in range(start, start + n):
        label = int(i % 20 < 3)
        surface = ("deck", "deck", "deck", "pavement", "pavement", "pavement", "pavement",
                   "pavement", "wall", "wall")[i // 20 % 10]
        samples.append(Sample(f"/nowhere/{surface}/{label}/{i:05d}.jpg", label, surface, None,
                              surface[0].upper()))
    return DatasetDescription("detect", "/nowhere", samples)


def _where(manifest: Manifest) -> dict[str, str]:
    return {s.image: split for split in ("train", "val", "test") for s in manifest[split]}


def test_same_seed_same_split_other_seed_other_split():
    desc = _fake(600)
    a, b = split_dataset(desc, seed=3), split_dataset(desc, seed=3)
    assert _where(a) == _where(b)
    other = _where(split_dataset(desc, seed=4))
    moved = sum(split != other[image] for image, split in _where(a).items())
    assert moved > 100  # a new seed reshuffles a good part of the files


def test_proportions_close_per_stratum():
    desc = _fake(1200)
    manifest = split_dataset(desc, seed=42, val=0.15, test=0.15)
    sizes = {s: len(manifest[s]) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 1200
    assert abs(sizes["val"] / 1200 - 0.15) < 0.03 and abs(sizes["test"] / 1200 - 0.15) < 0.03
    table = manifest.stratum_counts()
    assert len(table) == 6  # 2 labels x 3 surfaces
    for stratum, counts in table.items():
        n = sum(counts.values())
        for split, fraction in (("val", 0.15), ("test", 0.15), ("train", 0.7)):
            # binomial spread is about 2.9-9 points for these strata sizes (60-360 files)
            assert abs(counts[split] / n - fraction) < 0.12, (stratum, counts)


def test_adding_files_moves_no_existing_file():
    before = _where(split_dataset(_fake(500), seed=7))
    grown = _fake(500)
    grown.samples += _fake(300, start=500).samples
    after = _where(split_dataset(grown, seed=7))
    assert all(after[image] == split for image, split in before.items())


def test_duplicates_never_cross_splits(tmp_path: Path):
    root = make_class_tree(tmp_path, {"Positive": 1, "Negative": 0}, n_per_folder=12)
    for i in range(12):  # every image gets two byte-identical copies under other names
        for copy in ("x", "y"):
            shutil.copy(root / "Positive" / f"{i:03d}.jpg", root / "Positive" / f"{copy}{i}.jpg")
    desc = read_dataset(root)
    for keys in (None, check_dataset(desc).content_keys):
        where = _where(split_dataset(desc, seed=1, val=0.3, test=0.3, keys=keys))
        for i in range(12):
            group = {where[str(root / "Positive" / name)]
                     for name in (f"{i:03d}.jpg", f"x{i}.jpg", f"y{i}.jpg")}
            assert len(group) == 1
        assert len(set(where.values())) == 3  # the groups themselves are spread out


def test_manifest_round_trip_counts_and_weights(tmp_path: Path):
    manifest = split_dataset(_fake(400), seed=5)
    path = manifest.save(tmp_path / "run" / "split.json")
    again = Manifest.load(path)
    assert again.splits == manifest.splits and again.seed == 5
    counts = again.class_counts("train")
    assert counts[0] + counts[1] == len(again["train"])
    weights = again.class_weights("train")
    n = len(again["train"])
    assert weights[1] == pytest.approx(n / (2 * counts[1]))
    assert weights[0] == pytest.approx(n / (2 * counts[0]))
    # balanced weights give both classes the same total weight
    assert weights[0] * counts[0] == pytest.approx(weights[1] * counts[1])
    assert "class weights" in again.summary()


def test_bad_fractions_and_bad_manifest(tmp_path: Path):
    with pytest.raises(ValueError, match="fractions"):
        split_dataset(_fake(10), val=0.6, test=0.5)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        Manifest.load(tmp_path / "bad.json")


def test_labels_balance_is_kept_roughly():
    manifest = split_dataset(_fake(1000), seed=11)
    for split in ("train", "val", "test"):
        share = Counter(s.label for s in manifest[split])[1] / len(manifest[split])
        assert abs(share - 0.15) < 0.05


def test_segmentation_summary_counts_photos_not_classes(shared_data: Path):
    desc = read_dataset(shared_data / "seg_cfd")
    manifest = split_dataset(desc, seed=42)
    text = manifest.summary()
    assert "class weights" not in text and "uncracked" not in text and "cracked" not in text
    for split in ("train", "val", "test"):
        assert f"  {split:<5} {len(manifest[split]):>7,} photos" in text.splitlines()
    # a mask without crack pixels is worth a word; the CFD sample has none
    assert "without crack pixels" not in text
    blank = Sample("/x/blank.jpg", 0, None, "/x/blank.png", "x")
    manifest.splits["train"].append(blank)
    assert "(1 without crack pixels)" in manifest.summary()


def test_detection_summary_keeps_class_counts_and_weights():
    text = split_dataset(_fake(200), seed=1).summary()
    assert "cracked" in text and "uncracked" in text and "class weights (train)" in text
