"""A real MirroredStrategy over 2 logical CPU devices (in a fresh process, see mirrored_check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("mirrored")
    done = subprocess.run(
        [sys.executable, "-m", "tests.distribute.mirrored_check", str(folder)], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_two_replicas_give_the_single_device_weights(measured):
    assert measured["replicas"] == 2 and len(measured["devices"]) == 2
    assert measured["variable_type"] == "MirroredVariable"  # really distributed
    assert measured["weights_moved"] > 0.05  # it trained
    assert measured["max_weight_difference"] < 1e-5  # float32 summation order only


def test_out_of_memory_back_off_rebuilds_the_data_with_the_new_global_batch(measured):
    assert measured["oom_global_batches"] == [16, 8]  # 8 then 4 per replica, x 2 replicas
    assert measured["oom_history_batches"] == [8, 4, 4]  # epoch 1 kept, then the lower batch
    assert "lowering to 4 and going on from epoch 2" in measured["oom_events"][0]
    # linear scaling follows the lower batch, even after the mid-phase restore of the optimizer
    assert measured["oom_learning_rate"] == pytest.approx(measured["oom_expected_learning_rate"])


def test_mixed_precision_trains_under_the_strategy(measured):
    assert measured["mixed_compute_dtype"] == "float16"
    assert measured["mixed_optimizer"] == "LossScaleOptimizer"  # Keras adds loss scaling
    assert 0 < measured["mixed_loss"] < 10
