"""Input sharding in the real pipeline, and splits that every worker computes alike."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tensorflow as tf

# What tf.distribute applies to each worker's copy of the dataset (private, but the very code
# that runs in a multi-worker job): it fills in the SHARD_HINTs with (workers, index).
from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

from fisuras.config import Settings
from fisuras.data import check_dataset, make_dataset, read_dataset, split_dataset
from fisuras.data.dataset import Sample
from fisuras.distribute.training import split_fingerprint
from fisuras.train.job import prepare_data
from tests.data.helpers import make_class_tree, write_image

N_FILES = 11


@pytest.fixture(scope="module")
def numbered_images(tmp_path_factory) -> list[Sample]:
    """PNG files whose pixels all equal their number: a decoded batch says which file it holds."""
    root = tmp_path_factory.mktemp("numbered")
    return [Sample(image=str(write_image(root / f"{i:02d}.png",
                                         np.full((32, 32, 3), 10 * i, np.uint8))), label=i % 2)
            for i in range(N_FILES)]


def files_seen(dataset: tf.data.Dataset) -> list[int]:
    return [int(round(float(image[0, 0, 0]))) // 10
            for images, _ in dataset for image in images.numpy()]


def test_file_sharding_gives_each_worker_its_own_equal_share(numbered_images):
    dataset = make_dataset(numbered_images, task="detect", image_size=32, batch_size=4,
                           training=True, augment=False, cache="none", shard_policy="file",
                           num_workers=2)
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.HINT
    shards = [files_seen(_AutoShardDataset(dataset, 2, index)) for index in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == N_FILES // 2  # equal: no worker waits for ever
    assert not set(shards[0]) & set(shards[1])  # nobody reads another worker's files
    assert len(set(shards[0]) | set(shards[1])) == N_FILES - 1  # one left out, to be equal


def test_data_sharding_makes_every_worker_read_the_same_order(numbered_images):
    def build():
        return make_dataset(numbered_images, task="detect", image_size=32, batch_size=4,
                            training=True, augment=False, cache="none", shard_policy="data",
                            num_workers=2, deterministic=False, seed=7)

    first, second = build(), build()
    assert first.options().experimental_distribute.auto_shard_policy == (
        tf.data.experimental.AutoShardPolicy.DATA)
    assert first.options().deterministic  # forced: workers must agree on the order
    assert files_seen(first) == files_seen(second)
    assert sorted(files_seen(first)) == list(range(N_FILES))


def test_file_sharding_needs_two_workers(numbered_images):
    with pytest.raises(ValueError, match="'file' with 2 or more workers"):
        make_dataset(numbered_images, task="detect", image_size=32, batch_size=4,
                     training=False, shard_policy="file", num_workers=1)


def test_every_worker_computes_the_same_split(tmp_path):
    """The split is a pure function of seed and file contents: another machine, another path,
    another listing order, the same split."""
    folders = {"D/CD": 0, "D/UD": 0, "W/CW": 0, "W/UW": 0}
    here = make_class_tree(tmp_path / "machine_a" / "sdnet", folders, n_per_folder=6)
    there = shutil.copytree(here, tmp_path / "machine_b" / "elsewhere")
    settings = Settings(seed=3, val_fraction=0.2, test_fraction=0.2)
    manifest_a, _ = prepare_data("detect", here, settings)
    listed = read_dataset(there, task="detect")
    reordered = listed.with_samples(list(reversed(listed.samples)))
    manifest_b = split_dataset(reordered, seed=3, val=0.2, test=0.2,
                               keys=check_dataset(reordered).content_keys)
    assert split_fingerprint(manifest_a) == split_fingerprint(manifest_b)
    assert manifest_a.to_dict()["class_counts"] == manifest_b.to_dict()["class_counts"]
    assert len(manifest_a["test"]) > 0 and len(manifest_a["train"]) > len(manifest_a["test"])
    # ... and the fingerprint does see a difference in the data
    (there / "W" / "UW" / "000.jpg").unlink()
    manifest_c, _ = prepare_data("detect", there, settings)
    assert split_fingerprint(manifest_c) != split_fingerprint(manifest_a)
