"""How the input is split between workers: by file or by data, chosen per split with a reason.

With several workers each training step consumes one *global* batch, made of every worker's
part. Two ways to give each worker its part (tf.data auto-sharding):

* **FILE**: each worker reads and decodes only its own 1/W of the image files. Decoding is split
  like the compute, so it scales; each worker shuffles its own files.
* **DATA**: every worker reads and decodes every file, in the same seeded order, and keeps only
  its part of each batch. It costs W times the decoding, but works for any number of files.

FILE is the rule; DATA only when a split has fewer images than one global batch (a worker would
otherwise get less than its share of a single step). A single worker needs no sharding: a
MirroredStrategy splits each batch between its local devices.

Example:
    >>> choose_sharding(n_files=5000, workers=2, global_batch=128).policy
    'file'
    >>> choose_sharding(n_files=40, workers=2, global_batch=128).policy
    'data'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sharding:
    """``policy`` for ``make_dataset(shard_policy=...)`` (None: one worker) and why."""

    policy: str | None  # "file" | "data" | None
    reason: str


def choose_sharding(n_files: int, workers: int, global_batch: int) -> Sharding:
    """Pick FILE or DATA sharding for a split of ``n_files`` images (pure)."""
    if workers <= 1:
        return Sharding(None, "one worker: no input sharding (local devices split each batch)")
    if n_files >= global_batch and n_files >= workers:
        left_out = n_files % workers
        extra = f"; {left_out} file(s) left out to keep the shards equal" if left_out else ""
        return Sharding("file", f"FILE: each of the {workers} workers reads its own "
                                f"{n_files // workers} of {n_files} images{extra}")
    return Sharding("data", f"DATA: {n_files} images are fewer than one global batch "
                            f"({global_batch}); every worker reads all of them in the same "
                            "order and keeps its part of each batch")
