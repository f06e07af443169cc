"""Backup and restore for the non-chief workers: read the chief's backup, write a private one.

Keras 3's ``BackupAndRestore`` has no multi-worker logic: every worker would write the same
files. TensorFlow's guidance for multi-worker Keras training is that the chief writes the backup
and the other workers write to temporary folders, while *every* worker restores from the chief's
backup, so all of them resume at the same epoch with the same weights. This callback does the
non-chief half; the chief uses Keras's own ``BackupAndRestore`` on the run folder.

Restoring needs the chief's backup folder to be readable on every worker: the same machine, or a
shared filesystem (NFS or Lustre on Slurm, a ReadWriteMany volume on Kubernetes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras


class WorkerBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that starts from ``chief_dir`` and writes only to ``own_dir``.

    Example:
        >>> WorkerBackupAndRestore("runs/detect/x/backup/train", "/tmp/w1/backup/train")
        ...     # doctest: +SKIP
    """

    def __init__(self, chief_dir: str | Path, own_dir: str | Path, **kwargs):
        super().__init__(str(own_dir), **kwargs)
        self.chief_dir = Path(chief_dir)

    def on_train_begin(self, logs: dict | None = None) -> None:
        own = Path(self.backup_dir)
        # The chief's backup is the truth: drop whatever this worker wrote in an earlier attempt.
        shutil.rmtree(own, ignore_errors=True)
        if self.chief_dir.is_dir():
            shutil.copytree(self.chief_dir, own)
        super().on_train_begin(logs)
