"""The TF layer really applies the CPU plan, in a fresh process (TF state is process-wide)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

DOOR_SCRIPT = """
import json, os, sys
from scripts.utils.configurar_gpu import configurar_gpu_maxima_velocidad
assert "tensorflow" not in sys.modules, "the door must be importable before TensorFlow"
plan = configurar_gpu_maxima_velocidad(verbose=True)
again = configurar_gpu_maxima_velocidad(verbose=False)
from fisuras.hardware.apply import applied_state
state = applied_state()
state.update(same=again is plan, precision=plan.precision,
             onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
print("STATE" + json.dumps(state))
"""


def run_python(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=240, env=env)


@pytest.mark.slow
def test_door_applies_the_cpu_plan_before_and_after_tensorflow_import():
    result = run_python(DOOR_SCRIPT)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.split("STATE", 1)[1])
    assert state["policy"] == "float32" and state["precision"] == "float32"
    assert state["intra_op_threads"] >= 1 and state["inter_op_threads"] == 1
    assert state["jit"] is False
    assert state["same"] is True  # idempotent: the second call returns the same plan
    assert state["onednn"] == "1"
    assert "falling back to the CPU" in result.stdout


@pytest.mark.slow
def test_a_requested_policy_really_reaches_keras():
    # The planner never picks mixed precision on a CPU, so apply a described GPU plan directly:
    # this checks the TF layer, not the decision.
    code = """
import json
from fisuras.config import Settings
from fisuras.hardware.facts import GpuFacts, HardwareFacts
from fisuras.hardware.plan import make_plan
from fisuras.hardware.apply import apply_tensorflow, applied_state
plan = make_plan(HardwareFacts(gpus=(GpuFacts("RTX", (8, 6), 4096),), cpu_cores=2), Settings())
notes = apply_tensorflow(plan)
print("STATE" + json.dumps(applied_state()))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.split("STATE", 1)[1])
    # XLA has one route, jit_compile per model: no process-wide auto-clustering
    assert state["policy"] == "mixed_float16" and state["jit"] is False
    assert (state["intra_op_threads"], state["inter_op_threads"]) == (2, 1)


def test_configure_again_with_other_settings_applies_the_new_plan(monkeypatch):
    import fisuras.hardware as hardware
    from fisuras.config import Settings
    from fisuras.hardware.facts import HardwareFacts

    applied_to_tensorflow = []
    monkeypatch.setattr(hardware, "_applied", None)
    monkeypatch.setattr(hardware, "apply_environment", lambda plan: [])
    monkeypatch.setattr(hardware, "apply_tensorflow",
                        lambda plan: applied_to_tensorflow.append(plan.batch_size) or [])
    facts = HardwareFacts(cpu_cores=2)
    first = hardware.configure(Settings(), facts=facts)
    assert hardware.configure(Settings(), facts=facts) is first  # same plan: same object
    second = hardware.configure(Settings(batch_size=16), facts=facts)
    assert second.plan.batch_size == 16 and first.plan.batch_size == 64
    assert "replaces it" in second.notes[0]
    assert applied_to_tensorflow == [64, 16]  # the new plan reached TensorFlow too
