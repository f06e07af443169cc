"""``fisuras`` as a launched worker that kills itself once, at a chosen training step.

    python tests/distribute/worker_killed_once.py MARKER WORKER EPOCH -- FISURAS-ARGS...

On the first attempt (no MARKER file yet), worker WORKER (its TF_CONFIG task index) SIGKILLs
itself (no cleanup runs) at the end of the first training step of epoch EPOCH (1-based). That
step's all-reduce has completed (the step counter is read first, and it moves only once the
reduced gradients are applied), so every worker has left epoch EPOCH - 1, which the chief wrote
as its last checkpoint; the epoch's other steps need the dead worker, so none can finish it. A
kill set by a step, not by a clock: the same point of the run on any machine.

MARKER is written before the kill (with the epoch), so the restarted job trains normally.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import keras


class KillAtStep(keras.callbacks.Callback):
    def __init__(self, marker: Path, epoch: int):
        super().__init__()
        self.marker, self.kill_epoch, self.epoch = marker, epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1  # Keras counts from 0, the run from 1
        steps = self.params.get("steps")
        if self.epoch == self.kill_epoch and steps is not None and steps < 2:
            sys.exit(f"worker_killed_once: epoch {self.epoch} has {steps} step(s); a kill "
                     "after its first one would not be mid-epoch (give the test more images)")

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch != self.kill_epoch:
            return
        iterations = int(self.model.optimizer.iterations.numpy())  # waits for the all-reduce
        self.marker.write_text(json.dumps({"epoch": self.epoch, "iterations": iterations}))
        os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    marker, worker, epoch, separator, *command = argv
    assert separator == "--", "usage: MARKER WORKER EPOCH -- FISURAS-ARGS..."
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    if index == int(worker) and not Path(marker).exists():
        from fisuras.train import engine

        original = engine.Engine.__init__
        killer = KillAtStep(Path(marker), int(epoch))

        def with_killer(self, *args, extra_callbacks=None, **kwargs):
            original(self, *args, extra_callbacks=[*(extra_callbacks or []), killer], **kwargs)

        engine.Engine.__init__ = with_killer
    from fisuras.cli import main as fisuras

    fisuras(command, prog_name="fisuras")


if __name__ == "__main__":
    main(sys.argv[1:])
