"""The local launcher: TF_CONFIG per worker, prefixed output, stop-all and restart on failure.

The workers here are small Python scripts (no TensorFlow), so these tests take seconds.
"""

from __future__ import annotations

import io
import json
import sys
import textwrap
import time

import pytest

from fisuras.distribute import DistributeError, launch
from fisuras.distribute.launch import (
    free_ports,
    with_run_name,
    worker_command,
    worker_environments,
)

REPORT = textwrap.dedent("""
    import json, os
    config = json.loads(os.environ["TF_CONFIG"])
    print("cluster", json.dumps(config["cluster"]), "index", config["task"]["index"], flush=True)
""")


def run_launch(code: str, workers: int, **kwargs) -> tuple[int, list[str]]:
    out = io.StringIO()
    result = launch([sys.executable, "-c", code], workers, out=out, grace_seconds=2, **kwargs)
    return result, out.getvalue().splitlines()


@pytest.mark.slow
def test_each_worker_gets_the_same_cluster_and_its_own_index():
    code, lines = run_launch(REPORT, 3)
    assert code == 0
    reports = {line.split()[1]: line for line in lines if line.startswith("[worker")}
    assert sorted(reports) == ["0]", "1]", "2]"]
    clusters = {line.split("cluster ")[1].split(" index")[0] for line in reports.values()}
    assert len(clusters) == 1  # the same cluster everywhere
    hosts = json.loads(clusters.pop())["worker"]
    assert len(set(hosts)) == 3 and all(h.startswith("127.0.0.1:") for h in hosts)
    for index in range(3):  # the prefix and the task index agree
        assert reports[f"{index}]"].endswith(f"index {index}")


@pytest.mark.slow
def test_a_failed_worker_stops_the_others_and_all_restart(tmp_path):
    marker = tmp_path / "failed-once"
    code = textwrap.dedent(f"""
        import json, os, pathlib, sys, time
        index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
        # one marker per worker: "first attempt" must not depend on the other worker's timing
        marker = pathlib.Path({str(marker)!r} + str(index))
        if not marker.exists():
            marker.write_text("x")
            if index == 1:
                # fail only once worker 0 is waiting (its marker written), whatever the start-up
                # order: a worker 0 stopped before its marker would wait again after the restart
                while not pathlib.Path({str(marker)!r} + "0").exists():
                    time.sleep(0.01)
                sys.exit(3)
            time.sleep(60)  # worker 0 would wait for ever on a dead peer: the launcher stops it
        print("attempt done", flush=True)
    """)
    start = time.monotonic()
    result, lines = run_launch(code, 2, restarts=1)
    # worker 0 was stopped, not awaited (60 s): stopping takes at most the 2 s grace period
    assert result == 0 and time.monotonic() - start < 30
    assert any("worker 1 exited with code 3" in line for line in lines)
    assert any("restarting all workers (restart 1 of 1)" in line for line in lines)
    assert sum(line.startswith("[worker") and "attempt done" in line for line in lines) == 2


@pytest.mark.slow
def test_without_restarts_the_failing_code_is_returned():
    result, lines = run_launch("import sys; sys.exit(5)", 2)
    assert result == 5 and not any("restarting" in line for line in lines)


def test_helpers_build_the_worker_command_and_environment():
    assert worker_command(["fisuras", "train"], python="py") == ["py", "-m", "fisuras", "train"]
    assert worker_command(["python", "x.py"]) == ["python", "x.py"]
    with pytest.raises(DistributeError, match="no command"):
        worker_command([])
    # a train command gets one shared run name, unless it names or resumes a run already
    assert with_run_name(["train", "detect", "D"], "n")[-2:] == ["--name", "n"]
    assert with_run_name(["train", "detect", "D", "--name=x"], "n")[-1] == "--name=x"
    assert with_run_name(["train", "detect", "--resume", "r"], "n")[-1] == "r"
    assert with_run_name(["evaluate", "r"], "n") == ["evaluate", "r"]
    ports = free_ports(3)
    assert len(set(ports)) == 3
    envs = worker_environments({"KEEP": "1"}, ports[:2], gpu_ids=range(4))
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0,1", "2,3"]
    assert all(e["KEEP"] == "1" for e in envs)
    shared = worker_environments({}, ports, gpu_ids=range(2))  # fewer GPUs than workers: share
    assert all("CUDA_VISIBLE_DEVICES" not in e for e in shared)
