"""Readers: every layout loads with the right labels, surfaces, groups and mask pairing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fisuras.data import DatasetDescription, DatasetLayoutError, check_dataset, read_dataset
from tests.data.helpers import (
    make_class_tree,
    make_seg_set,
    stripe_mask,
    write_image,
    write_mask,
)

# --- the real samples, as they lie ------------------------------------------------------------


def test_metu_positive_is_cracked(shared_data: Path):
    desc = read_dataset(shared_data / "cls_metu")
    assert desc.task == "detect"
    by_folder = {(Path(s.image).parent.name, s.label) for s in desc.samples}
    assert by_folder == {("Positive", 1), ("Negative", 0)}
    assert Counter(s.label for s in desc.samples) == {1: 150, 0: 150}
    assert {s.group for s in desc.samples} == {"cls_metu"}
    assert all(s.mask is None and s.surface is None for s in desc.samples)
    assert not desc.problems


@pytest.mark.parametrize("name", ["seg_cfd", "seg_deepcrack", "seg_crack500"])
def test_segmentation_samples_pair_by_stem(shared_data: Path, name: str):
    desc = read_dataset(shared_data / name)
    assert desc.task == "segment"
    assert len(desc.samples) == 30 and not desc.problems
    for s in desc.samples:
        assert Path(s.image).parent.name == "images" and Path(s.mask).parent.name == "masks"
        assert Path(s.image).stem == Path(s.mask).stem
        assert s.group == name
        assert s.label == 1  # the README: every mask has crack pixels


def test_shared_root_needs_task_segment(shared_data: Path):
    with pytest.raises(DatasetLayoutError, match="cls_metu"):
        read_dataset(shared_data)
    desc = read_dataset(shared_data, task="segment")
    assert Counter(s.group for s in desc.samples) == {
        "seg_cfd": 30, "seg_deepcrack": 30, "seg_crack500": 30}


# --- generated layouts ------------------------------------------------------------------------

@pytest.mark.parametrize("tops,classes", [
    (("D", "P", "W"), ("C{}", "U{}")),
    (("Decks", "Pavements", "Walls"), ("C{}", "U{}")),
    (("Decks", "Pavements", "Walls"), ("Cracked", "Non-cracked")),  # the Kaggle copy
])
def test_sdnet_layouts(tmp_path: Path, tops, classes):
    folders = {}
    for top in tops:
        letter = top[0]
        folders[f"{top}/{classes[0].format(letter)}"] = 1
        folders[f"{top}/{classes[1].format(letter)}"] = 0
    make_class_tree(tmp_path, folders, n_per_folder=2)
    desc = read_dataset(tmp_path)
    assert desc.task == "detect" and len(desc.samples) == 12
    expected_surface = {"D": "deck", "P": "pavement", "W": "wall"}
    for s in desc.samples:
        top, cls = Path(s.image).parent.parent.name, Path(s.image).parent.name
        assert s.surface == expected_surface[top[0]]
        assert s.group == top
        assert s.label == folders[f"{top}/{cls}"]


@pytest.mark.parametrize("cracked,uncracked", [
    ("Positive", "Negative"), ("cracked", "uncracked"), ("crack", "no_crack"), ("1", "0"),
    ("Crack", "No Crack"), ("with-cracks", "without-cracks"),
])
def test_two_class_names(tmp_path: Path, cracked: str, uncracked: str):
    make_class_tree(tmp_path, {cracked: 1, uncracked: 0}, n_per_folder=2)
    desc = read_dataset(tmp_path)
    assert {(Path(s.image).parent.name, s.label) for s in desc.samples} == {
        (cracked, 1), (uncracked, 0)}


def test_ambiguous_names_ask_for_class_map(tmp_path: Path):
    make_class_tree(tmp_path, {"alpha": 1, "beta": 0}, n_per_folder=2)
    with pytest.raises(DatasetLayoutError) as error:
        read_dataset(tmp_path)
    assert "'alpha'" in str(error.value) and "'beta'" in str(error.value)
    assert "class_map" in str(error.value)
    desc = read_dataset(tmp_path, class_map={"alpha": 0, "beta": 1})
    assert {(Path(s.image).parent.name, s.label) for s in desc.samples} == {
        ("alpha", 0), ("beta", 1)}


def test_class_map_must_fit_the_folders(tmp_path: Path):
    make_class_tree(tmp_path, {"alpha": 1, "beta": 0}, n_per_folder=1)
    with pytest.raises(DatasetLayoutError, match="beta"):
        read_dataset(tmp_path, class_map={"alpha": 1})
    with pytest.raises(DatasetLayoutError, match="0 or 1"):
        read_dataset(tmp_path, class_map={"alpha": 1, "beta": 2})


def test_three_class_folders_are_ambiguous(tmp_path: Path):
    make_class_tree(tmp_path, {"Positive": 1, "Negative": 0, "maybe": 0}, n_per_folder=1)
    with pytest.raises(DatasetLayoutError, match="maybe"):
        read_dataset(tmp_path)


def test_several_seg_sets_become_groups(tmp_path: Path):
    make_seg_set(tmp_path / "seg_a", n=2)
    make_seg_set(tmp_path / "seg_b", n=3)
    desc = read_dataset(tmp_path)
    assert desc.task == "segment"
    assert Counter(s.group for s in desc.samples) == {"seg_a": 2, "seg_b": 3}


def test_mask_suffixes_and_mask_value_conventions(tmp_path: Path):
    size = (20, 24)
    crack = stripe_mask(size, 4)
    empty = np.zeros(size, bool)
    cases = {  # stem -> (mask file name, mask, on value, mode)
        "a": ("a_mask.png", crack, 255, "L"),
        "b": ("b.png", crack, 1, "L"),  # 0/1 mask
        "c": ("c_gt.bmp", crack, (255, 0, 0), "RGB"),  # red on black
        "d": ("d.png", empty, 255, "L"),  # crack-free image
    }
    for stem, (name, mask, on, mode) in cases.items():
        write_image(tmp_path / "images" / f"{stem}.jpg", size=size)
        write_mask(tmp_path / "masks" / name, mask, on=on, mode=mode)
    desc = read_dataset(tmp_path)
    labels = {Path(s.image).stem: (Path(s.mask).name, s.label) for s in desc.samples}
    assert labels == {"a": ("a_mask.png", 1), "b": ("b.png", 1), "c": ("c_gt.bmp", 1),
                      "d": ("d.png", 0)}


def test_detect_task_on_segmentation_pairs_uses_mask_labels(tmp_path: Path):
    make_seg_set(tmp_path, n=2)
    desc = read_dataset(tmp_path, task="detect")
    assert desc.task == "detect" and all(s.label == 1 and s.mask for s in desc.samples)


def test_segment_task_on_class_folders_is_refused(tmp_path: Path):
    make_class_tree(tmp_path, {"Positive": 1, "Negative": 0}, n_per_folder=1)
    with pytest.raises(DatasetLayoutError, match="segment"):
        read_dataset(tmp_path, task="segment")


def test_not_a_folder_and_no_images(tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="not a folder"):
        read_dataset(tmp_path / "missing")
    (tmp_path / "Positive").mkdir()
    (tmp_path / "Negative").mkdir()
    with pytest.raises(DatasetLayoutError, match="no usable images"):
        read_dataset(tmp_path)


def test_hidden_files_are_ignored(tmp_path: Path):
    make_class_tree(tmp_path, {"Positive": 1, "Negative": 0}, n_per_folder=1)
    (tmp_path / "Positive" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "Negative" / "Thumbs.db").write_bytes(b"\0")
    write_image(tmp_path / "__MACOSX" / "Positive" / "._000.jpg", seed=1)  # unzip litter
    desc = read_dataset(tmp_path)
    assert len(desc.samples) == 2 and not desc.problems


def test_description_json_round_trip(tmp_path: Path):
    make_seg_set(tmp_path, n=2)
    desc = read_dataset(tmp_path)
    again = DatasetDescription.from_json(desc.to_json())
    assert again == desc


# --- issue 14: links are followed or reported, never skipped silently ------------------------

def _link_kinds(desc: DatasetDescription) -> dict[str, str]:
    return {Path(p.path).name: f"{p.kind}: {p.detail}" for p in desc.problems}


def test_dangling_and_looping_links_are_reported_by_name(tmp_path: Path):
    root = make_class_tree(tmp_path / "data", {"Positive": 1, "Negative": 0}, n_per_folder=2)
    (root / "Positive" / "gone.jpg").symlink_to(tmp_path / "deleted.jpg")
    (root / "Negative" / "a.jpg").symlink_to("b.jpg")
    (root / "Negative" / "b.jpg").symlink_to("a.jpg")
    desc = read_dataset(root)
    assert len(desc.samples) == 4
    found = _link_kinds(desc)
    assert found["gone.jpg"] == (f"broken_link: dangling symbolic link: its target "
                                 f"{tmp_path / 'deleted.jpg'} does not exist")
    assert found["a.jpg"] == "broken_link: symbolic link loop (-> b.jpg); nothing to read"
    assert found["b.jpg"] == "broken_link: symbolic link loop (-> a.jpg); nothing to read"
    report = check_dataset(desc)
    assert not report.ok and report.counts == {"broken_link": 3}
    assert "Negative/a.jpg: symbolic link loop" in report.to_text()


def test_linked_folders_are_read_and_a_link_back_up_is_a_note(tmp_path: Path):
    make_seg_set(tmp_path / "elsewhere", n=2, seed=300)
    root = make_seg_set(tmp_path / "data", n=2)
    (root / "images" / "more").symlink_to(tmp_path / "elsewhere" / "images")
    (root / "masks" / "more").symlink_to(tmp_path / "elsewhere" / "masks")
    (root / "images" / "up").symlink_to(root / "images")  # a loop: images/up/up/up...
    desc = read_dataset(root)
    assert sorted(Path(s.image).relative_to(root).as_posix() for s in desc.samples) == [
        "images/000.jpg", "images/001.jpg", "images/more/000.jpg", "images/more/001.jpg"]
    assert _link_kinds(desc) == {"up": f"link_loop: leads back to {root.resolve() / 'images'}, "
                                       "which holds this folder; not followed"}
    assert check_dataset(desc).ok  # a note: nothing is missing


def test_a_class_folder_that_is_a_dangling_link_is_named(tmp_path: Path):
    root = make_class_tree(tmp_path / "sdnet", {"D/CD": 1, "D/UD": 0, "W/CW": 1}, n_per_folder=1)
    (root / "W" / "UW").symlink_to(tmp_path / "unmounted" / "UW")
    desc = read_dataset(root)  # W/UW is missing: reported, not silently a wall without U images
    assert _link_kinds(desc) == {"UW": "broken_link: dangling symbolic link: its target "
                                       f"{tmp_path / 'unmounted' / 'UW'} does not exist"}
    two = make_class_tree(tmp_path / "two", {"Positive": 1}, n_per_folder=1)
    (two / "Negative").symlink_to(tmp_path / "unmounted" / "Negative")
    with pytest.raises(DatasetLayoutError, match=r"Sub-folders found: 'Positive'.*Broken links "
                       r"in .*two: Negative \(dangling symbolic link"):
        read_dataset(two)
