"""Run ``fisuras.train.train`` under the plan's strategy, with the multi-worker agreements.

Every worker runs the same command. Before training they agree, through the chief:

* which run: a multi-worker run has a name (``--name``); a restarted job (after a worker died,
  or after an out-of-memory stop) finds that run unfinished and *every* worker resumes it from
  the chief's last committed epoch;
* the split: each worker splits the data itself (a pure function of seed and file contents);
  they compare fingerprints and stop with a clear error if the data differ between machines.

Only the chief writes the run folder; the other workers keep private files in a folder of their
own (``worker_folder``).

Example:
    >>> result = train_distributed("detect", "data/SDNET2018", settings, plan,  # doctest: +SKIP
    ...                            environ=os.environ)
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from fisuras.config import Settings
from fisuras.distribute.cluster import (
    Cluster,
    DistributeError,
    check_workers_setting,
    cluster_from_environ,
)
from fisuras.hardware.plan import Plan

# What the chief found at runs/<task>/<name>, broadcast to every worker.
NEW, RESUME, FINISHED, NOT_A_RUN = 0, 1, 2, 3


def settings_for_environment(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """``settings`` with ``workers`` taken from TF_CONFIG (call before planning)."""
    workers = check_workers_setting(settings.workers, cluster_from_environ(environ))
    return settings if workers == settings.workers else settings.model_copy(
        update={"workers": workers})


def run_status(path: Path) -> int:
    """NEW, RESUME, FINISHED or NOT_A_RUN for the folder a named run would use (pure read)."""
    if not path.exists():
        return NEW
    state = path / "state.json"
    if not state.is_file():
        return NOT_A_RUN
    try:
        finished = json.loads(state.read_text())["finished"]
    except (OSError, ValueError, KeyError):
        return NOT_A_RUN
    return FINISHED if finished else RESUME


def split_fingerprint(manifest) -> int:
    """A 63-bit hash of which file (relative to the data root) is in which split."""
    digest = hashlib.sha256()
    for split in ("train", "val", "test"):
        for name in sorted(os.path.relpath(s.image, manifest.root or "/") for s in manifest[split]):
            digest.update(f"{split}\0{name}\n".encode())
    return int.from_bytes(digest.digest()[:8], "big") >> 1


def worker_folder(task: str, name: str, cluster: Cluster) -> Path:
    """A non-chief's private folder, the same across restarts (so it does not pile up)."""
    return Path(tempfile.gettempdir()) / (f"fisuras-{task}-{name}-worker{cluster.rank}-of-"
                                          f"{cluster.num_workers}")


def train_distributed(task: str, data: str | Path | None, settings: Settings, plan: Plan, *,
                      environ: Mapping[str, str], resume: str | Path | None = None,
                      verbose: int = 1, extra_callbacks: list | None = None,
                      log: Callable[[str], None] | None = None):
    """Create the plan's strategy and train; returns ``fisuras.train.TrainResult``.

    ``settings`` and ``plan`` must already count TF_CONFIG's workers
    (:func:`settings_for_environment` before ``hardware.configure``).
    """
    from fisuras.distribute.strategy import broadcast_from_chief, make_strategy
    from fisuras.train import WorkerRole, train

    log = log or (lambda message: print(message, file=sys.stderr))
    cluster = cluster_from_environ(environ) if plan.workers > 1 else None
    if plan.workers > 1 and resume is None and not settings.run_name:
        raise DistributeError("a multi-worker run needs a name (--name NAME) so that every "
                              "worker, and a restarted job, finds the same run folder")
    strategy = make_strategy(plan, cluster)
    if cluster is None:
        return train(task, data, settings, plan, resume=resume, verbose=verbose,
                     role=WorkerRole(strategy=strategy), extra_callbacks=extra_callbacks,
                     log=log)

    log(f"worker {cluster.rank} of {cluster.num_workers} ({cluster.address})"
        f"{', chief: writes the run folder' if cluster.is_chief else ''}; "
        f"{strategy.num_replicas_in_sync} replicas in sync")
    if resume is None:
        run_path = Path(settings.runs_dir) / task / str(settings.run_name)
        status = broadcast_from_chief(strategy, run_status(run_path) if cluster.is_chief else 0)
        if status in (FINISHED, NOT_A_RUN):
            what = "already finished" if status == FINISHED else "exists but is not a fisuras run"
            raise DistributeError(f"{run_path} {what}: choose another --name")
        if status == RESUME:
            log(f"{run_path} is unfinished: every worker resumes it from the chief's checkpoint")
            resume = run_path
    if resume is not None and not (Path(resume) / "state.json").is_file():
        raise DistributeError(
            f"the run folder {resume} is not visible on worker {cluster.rank}: resuming a "
            "multi-worker run needs the runs folder on a filesystem every worker shares")

    def check_same_split(manifest) -> None:
        mine = split_fingerprint(manifest)
        chiefs = broadcast_from_chief(strategy, mine)
        if mine != chiefs:
            raise DistributeError(
                f"worker {cluster.rank} split the data differently from the chief: the data "
                "folders differ between machines (same files, same contents needed)")
        log(f"split fingerprint {mine:016x}: the same on every worker")

    name = str(settings.run_name or Path(str(resume)).name)
    role = WorkerRole(
        strategy=strategy, is_writer=cluster.is_chief, on_manifest=check_same_split,
        worker_dir=None if cluster.is_chief else worker_folder(task, name, cluster))
    result = train(task, data, settings, plan, resume=resume,
                   verbose=verbose if cluster.is_chief else 0, role=role,
                   extra_callbacks=extra_callbacks, log=log)
    # Wait for the chief's evaluation before leaving: a worker that exits early is reported to
    # the chief by TensorFlow's coordination service as a crashed task.
    broadcast_from_chief(strategy, 0)
    if not cluster.is_chief:
        from fisuras.train import RunFolder

        result.run = RunFolder(Path(resume) if resume else Path(settings.runs_dir) / task / name)
    return result
