"""Training: one engine for detection and segmentation, driven by settings and a hardware plan.

``train`` (``job.py``) is the whole job: read and check the data, split it, build the model, fit
the phases (``engine.py``), then finish the run (``finish.py``: best weights, the threshold
chosen on validation, the test figures). ``resume.py`` says what a resumed run may change.

Example:
    >>> from fisuras import hardware
    >>> from fisuras.config import load_settings
    >>> settings = load_settings(overrides={"detect.backbone": "small_cnn", "weights": "none"})
    >>> plan = hardware.configure(settings).plan                      # doctest: +SKIP
    >>> result = train("detect", "data/SDNET2018", settings, plan)    # doctest: +SKIP
    >>> result.run.path                                               # doctest: +SKIP
    PosixPath('runs/detect/20261128-101500')
"""

from __future__ import annotations

from fisuras.runs import RunFolder, RunFolderError
from fisuras.train.job import TrainingInterrupted, TrainResult, WorkerRole, train
from fisuras.train.resume import resumed_settings

__all__ = ["RunFolder", "RunFolderError", "TrainResult", "TrainingInterrupted", "WorkerRole",
           "resumed_settings", "train"]
