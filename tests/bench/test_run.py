"""One real, small ``fisuras benchmark``: two configurations, each in its own process."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fisuras.cli import main


@pytest.mark.slow
def test_benchmark_command_reports_each_configuration_from_its_own_run(tmp_path):
    # The test hook makes the baseline raise inside its process; the planned setting really
    # trains. The table and JSON must show the failure with its reason and no figure for it.
    result = CliRunner().invoke(
        main, ["benchmark", "--steps", "3", "--backbone", "small_cnn", "--image-size", "64",
               "--only", "baseline,planned", "--images", "1000", "--epochs", "3",
               "--set", f"runs_dir={tmp_path}"],
        env={"FISURAS_BENCH_FORCE_FAIL": "baseline"})
    assert result.exit_code == 1, result.output  # a failed configuration fails the command
    out_dir = tmp_path / "benchmark"
    (run,) = [p for p in out_dir.iterdir() if p.name != "data"]
    data = json.loads((run / "benchmark.json").read_text())

    assert [row["name"] for row in data["configurations"]] == ["baseline", "planned"]
    baseline, planned = data["configurations"]
    assert baseline["measurement"]["status"] == "failed"
    assert "test hook" in baseline["measurement"]["reason"]
    assert baseline["measurement"]["images_per_second"] is None
    assert baseline["projection"] is None

    figures = planned["measurement"]
    assert figures["status"] == "ok" and figures["images_per_second"] > 0
    assert figures["compile_seconds"] > 0 and figures["peak_memory_mb"] > 100
    assert figures["memory_kind"] == "host" and figures["gpu_utilisation"] is None
    assert figures["details"]["measured_steps"] == 3
    assert figures["details"]["images_measured"] == 3 * planned["batch_size"]
    # The planned process really ran with the plan's choices (its own TF state).
    applied = figures["details"]["applied"]
    assert applied["intra_op_threads"] == data["plan"]["intra_op_threads"]
    assert applied["policy"] == planned["precision"] == "float32"
    assert applied["jit_compile"] is False
    # ... with the plan's oneDNN switch (on for x86 CPUs), which TensorFlow honoured
    switch = data["plan"]["env"].get("TF_ENABLE_ONEDNN_OPTS")
    assert applied["TF_ENABLE_ONEDNN_OPTS"] == (switch or "(TF default)")
    if switch:
        assert applied["onednn"] is (switch == "1")
    else:  # TensorFlow's own choice for this CPU, read from the process (not unknown)
        assert isinstance(applied["onednn"], bool)
    assert planned["projection"]["epoch_seconds"] == pytest.approx(
        1000 / figures["images_per_second"])
    assert planned["projection"]["training_seconds"] == pytest.approx(
        3 * 1000 / figures["images_per_second"])
    assert data["planned_vs_baseline"] is None

    table = (run / "benchmark.txt").read_text()
    assert table.strip() in result.output
    before_after = [line for line in table.splitlines() if line.startswith("| images/s")]
    assert before_after[0].split("|")[2].strip() == "FAILED"
    assert before_after[0].split("|")[3].strip() == f"{figures['images_per_second']:,.1f}"
    assert "planned vs baseline: n/a (baseline not measured)" in table
    assert data["benchmark"]["data"]["synthetic"] is True
