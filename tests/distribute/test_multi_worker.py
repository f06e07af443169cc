"""A real 2-process MultiWorkerMirroredStrategy run on 127.0.0.1, through `fisuras launch`.

One launch covers the issue's three claims: the two workers train together, only the chief writes
the run folder, and killing a worker mid-run then restarting both (the launcher's --restarts)
resumes from the chief's last checkpoint without losing a completed epoch. The kill is set by a
training step (``worker_killed_once``: worker 1 kills itself after the first step of epoch 2),
not by a clock, so the run is at the same point on any machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from fisuras.data.synth import synthesize
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow
EPOCHS = 3
KILL_EPOCH = 2  # worker 1 dies after this epoch's first step: epoch 1 is the last checkpoint


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("multi_worker")
    synthesize(root / "synth", n_per_class_per_surface=6, n_uncracked_per_surface=10, n_seg=0,
               image_size=64)
    runs, private, marker = root / "runs", root / "tmp", root / "killed.json"
    private.mkdir()
    command = [sys.executable, "-m", "fisuras", "launch", "--workers", "2", "--restarts", "1",
               "--", sys.executable, str(REPO_ROOT / "tests/distribute/worker_killed_once.py"),
               str(marker), "1", str(KILL_EPOCH), "--",
               "train", "detect", str(root / "synth" / "sdnet"), "--name", "mw",
               "--epochs", str(EPOCHS), "--batch-size", "4", "--backbone", "small_cnn",
               "--weights", "none", "--image-size", "32", "--set", f"runs_dir={runs}",
               "--set", "cache=memory", "--set", "val_fraction=0.2", "--set",
               "test_fraction=0.2"]
    # cwd: no config.py knob file; TMPDIR: where the non-chief keeps its private files
    done = subprocess.run(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=900,
                          env={**os.environ, "TMPDIR": str(private), "TF_CPP_MIN_LOG_LEVEL": "2"})
    killed = json.loads(marker.read_text()) if marker.exists() else None
    return {"code": done.returncode, "lines": done.stdout.splitlines(keepends=True),
            "killed": killed, "runs": runs, "private": private}


def worker_lines(job: dict, index: int, text: str) -> list[str]:
    return [line for line in job["lines"] if line.startswith(f"[worker {index}]") and
            text in line]


def test_two_workers_train_together_and_finish(job):
    tail = "".join(job["lines"][-40:])
    assert job["killed"] is not None and job["killed"]["epoch"] == KILL_EPOCH, tail
    assert job["code"] == 0, tail
    run = job["runs"] / "detect" / "mw"
    history = (run / "history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in history] == list(range(1, EPOCHS + 1))
    assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()
    for index in (0, 1):
        assert worker_lines(job, index, "2 replicas in sync")
    fingerprints = {line.split("split fingerprint ")[1].split(":")[0]
                    for line in job["lines"] if "split fingerprint" in line}
    assert len(fingerprints) == 1  # both workers split the data alike


def test_only_the_chief_writes_the_run_folder(job):
    assert [p.name for p in (job["runs"] / "detect").iterdir()] == ["mw"]
    # worker 1 kept its own files in its private folder, never in the run folder
    private = job["private"] / "fisuras-detect-mw-worker1-of-2"
    assert (private / "runs" / "detect" / "mw" / "settings.yaml").is_file()
    assert worker_lines(job, 0, "chief: writes the run folder")
    assert not worker_lines(job, 1, "chief: writes the run folder")


def test_killing_a_worker_resumes_both_from_the_last_checkpoint(job):
    assert any("worker 1 exited with code -9" in line for line in job["lines"])
    assert any("restarting all workers" in line for line in job["lines"])
    resumed = {}
    for index in (0, 1):
        found = worker_lines(job, index, "resuming ")
        assert found, f"worker {index} did not resume"
        resumed[index] = int(re.search(r"at epoch (\d+)", found[-1]).group(1))
    # both workers go on at the epoch in flight: epoch 1 (committed) is not trained again, and
    # epoch 2 (cut after one step) is trained whole
    assert resumed == {0: KILL_EPOCH, 1: KILL_EPOCH}
