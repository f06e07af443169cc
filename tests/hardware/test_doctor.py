"""The doctor on this machine, and its pure pieces."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fisuras.hardware.doctor import (
    FAIL,
    PASS,
    WARN,
    Check,
    check_cuda_build,
    check_versions,
    exit_code,
)
from tests.conftest import REPO_ROOT


def test_exit_code_fails_only_on_failures():
    assert exit_code([Check("a", PASS, ""), Check("b", WARN, "")]) == 0
    assert exit_code([Check("a", PASS, ""), Check("b", FAIL, "")]) == 1


def test_version_and_build_checks():
    assert check_versions("2.21.0", "3.15.1").status == PASS
    assert check_versions("2.16.1", "3.3.3").status == WARN
    assert check_versions("2.15.0", "2.15.0").status == FAIL
    cpu_build = check_cuda_build({"is_cuda_build": False})
    assert cpu_build.status == WARN and "[gpu]" in cpu_build.fix
    assert "CUDA 12.5" in check_cuda_build({"is_cuda_build": True, "cuda_version": "12.5",
                                            "cudnn_version": "9"}).detail


@pytest.mark.slow
def test_doctor_on_this_machine_and_via_the_seed_script():
    for command in ([sys.executable, "-m", "fisuras", "doctor"],
                    [sys.executable, "scripts/utils/verificar_gpu.py"]):
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=240)
        lines = result.stdout.splitlines()
        assert any(line.startswith("[PASS] python") for line in lines)
        assert any("compute /device:CPU:0" in line and line.startswith("[PASS]") for line in lines)
        has_gpu = any(line.startswith("[PASS] gpus") for line in lines)
        if not has_gpu:  # CPU-only is a warning with a fix, not a failure
            assert any(line.startswith("[WARN] gpus") and "->" in line for line in lines)
        failed = any(line.startswith("[FAIL]") for line in lines)
        assert result.returncode == (1 if failed else 0), result.stdout + result.stderr
        assert "precision" in result.stdout  # the plan is printed with its reasons
