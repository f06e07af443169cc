"""The benchmark's pure part: configurations from a plan, projections, plan checks, tables."""

from __future__ import annotations

import json
import signal

import pytest

from fisuras.bench.run import exit_reason, synthetic_split
from fisuras.bench.turbo import (
    BenchmarkResult,
    Configuration,
    Measurement,
    before_after_table,
    best_of,
    calls,
    configurations,
    configurations_table,
    epoch_seconds,
    format_duration,
    images_needed,
    plan_checks,
    select,
    training_seconds,
)
from fisuras.config import load_settings
from fisuras.hardware.facts import GpuFacts, HardwareFacts
from fisuras.hardware.plan import make_plan

RTX_2050_LAPTOP = HardwareFacts(gpus=(GpuFacts("NVIDIA GeForce RTX 2050", (8, 6), 4096),),
                                cpu_cores=8, memory_mb=16000)
GTX_1650_PC = HardwareFacts(gpus=(GpuFacts("NVIDIA GeForce GTX 1650", (7, 5), 4096),),
                            cpu_cores=4)
TWO_CORE_CPU = HardwareFacts(cpu_cores=2, memory_mb=8000)


def configs_for(facts, **overrides):
    settings = load_settings(overrides=overrides)
    return {c.name: c for c in configurations(make_plan(facts, settings), settings)}


def ok(rate, **kwargs):
    return Measurement("ok", images_per_second=rate, compile_seconds=kwargs.get("compile", 3.0),
                       peak_memory_mb=kwargs.get("memory", 900.0), memory_kind="host")


# --- configurations ---------------------------------------------------------------------------

def test_cpu_plan_configurations():
    configs = configs_for(TWO_CORE_CPU)
    assert list(configs) == ["baseline", "mixed_precision", "xla", "batch", "input_pipeline",
                             "runtime", "planned"]
    base = configs["baseline"]
    assert (base.precision, base.xla, base.batch_size, base.input_pipeline) == (
        "float32", False, 32, "plain")
    assert not base.full_plan and not base.runtime and base.steps_per_execution == 1
    # The CPU plan turns mixed precision and XLA off: those one-change rows are the alternatives.
    assert configs["mixed_precision"].precision == "mixed_float16"
    assert not configs["mixed_precision"].plan_choice and not configs["xla"].plan_choice
    assert configs["batch"].batch_size == 64 and configs["batch"].plan_choice
    planned = configs["planned"]
    assert (planned.precision, planned.xla, planned.batch_size, planned.input_pipeline) == (
        "float32", False, 64, "fisuras")
    assert planned.full_plan and planned.steps_per_execution == 1
    assert "threads 2/1" in planned.changes and "TF_ENABLE_ONEDNN_OPTS=1" in planned.changes
    # The plan's threads and oneDNN alone, to see what they are worth without the rest
    runtime = configs["runtime"]
    assert runtime.runtime and runtime.plan_choice and not runtime.full_plan
    assert "TF_ENABLE_ONEDNN_OPTS=1" in runtime.changes and runtime.batch_size == 32


def test_gpu_plan_configurations():
    configs = configs_for(RTX_2050_LAPTOP)
    assert configs["mixed_precision"].precision == "mixed_float16"
    assert configs["mixed_precision"].plan_choice and configs["xla"].plan_choice
    planned = configs["planned"]
    assert planned.precision == "mixed_float16" and planned.xla and planned.batch_size == 64
    assert planned.steps_per_execution == 8 and "8 steps/call" in planned.changes
    # Only the one-change rows differ from the baseline, each in its own dimension.
    base = configs["baseline"]
    fields = ("precision", "xla", "batch_size", "input_pipeline", "runtime")
    for name, field in [("mixed_precision", "precision"), ("xla", "xla"),
                        ("batch", "batch_size"), ("input_pipeline", "input_pipeline"),
                        ("runtime", "runtime")]:
        differing = [f for f in fields if getattr(configs[name], f) != getattr(base, f)]
        assert differing == [field]
    # XLA's auto-clustering variable belongs to the XLA row, not to the runtime row
    assert "TF_XLA_FLAGS" not in configs["runtime"].changes
    assert "TF_GPU_ALLOCATOR=cuda_malloc_async" in configs["runtime"].changes


def test_gtx_1650_alternative_precision_is_not_the_plans_choice():
    configs = configs_for(GTX_1650_PC)
    assert configs["planned"].precision == "float32" and configs["planned"].xla
    assert configs["mixed_precision"].precision == "mixed_float16"
    assert not configs["mixed_precision"].plan_choice


def test_bfloat16_request_and_batch_32_settings():
    configs = configs_for(RTX_2050_LAPTOP, **{"gpu.precision": "bfloat16", "batch_size": 32})
    assert configs["mixed_precision"].precision == "mixed_bfloat16"
    # The plan keeps 32, so the one-change row tries the seed's 64 and it is not the plan's.
    assert configs["batch"].batch_size == 64 and not configs["batch"].plan_choice
    assert configs["planned"].batch_size == 32


def test_select_keeps_order_and_names_allowed():
    configs = configurations(make_plan(TWO_CORE_CPU, load_settings()), load_settings())
    assert [c.name for c in select(configs, ["planned", "baseline"])] == ["baseline", "planned"]
    with pytest.raises(ValueError, match="allowed: baseline, mixed_precision"):
        select(configs, ["baseline", "turbo"])


def test_calls_and_images_needed_cover_whole_executions():
    assert calls(10, 1) == 10 and calls(10, 8) == 2 and calls(1, 8) == 1
    small = Configuration("a", "", batch_size=32)
    gpu = Configuration("b", "", batch_size=64, steps_per_execution=8)
    # (2 measured + 2 warm-up calls) x 8 steps x 64 images
    assert images_needed([small, gpu], steps=10, warmup_calls=2) == 4 * 8 * 64


def test_synthetic_split_is_sdnet_shaped():
    cracked, uncracked = synthetic_split(800)
    assert 3 * (cracked + uncracked) >= 800
    assert cracked / (cracked + uncracked) == pytest.approx(0.15, abs=0.01)


# --- projections ------------------------------------------------------------------------------

def test_projections():
    assert epoch_seconds(56_092, 100.0) == pytest.approx(560.92)
    assert training_seconds(56_092, 100.0, 30) == pytest.approx(30 * 560.92)
    with pytest.raises(ValueError):
        epoch_seconds(10, 0.0)


@pytest.mark.parametrize("seconds, text", [(42, "42 s"), (450, "7.5 min"), (11_100, "3 h 05 min"),
                                           (187_200, "2 d 04 h")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# --- plan checks ------------------------------------------------------------------------------

def test_plan_checks_say_which_side_is_faster():
    configs = list(configs_for(TWO_CORE_CPU).values())
    measured = {"baseline": ok(10.0), "mixed_precision": ok(4.0), "xla": ok(12.0),
                "batch": ok(9.8), "input_pipeline": ok(10.0), "runtime": ok(20.0)}
    checks = {c.dimension: c for c in plan_checks(configs, measured)}
    # float32 (plan) vs mixed: 10 / 4
    assert checks["precision"].ratio == pytest.approx(2.5) and not checks["precision"].slower
    assert "at least as fast" in checks["precision"].line()
    # XLA off (plan) measured slower than XLA on here: said so
    assert checks["xla"].slower and "SLOWER" in checks["xla"].line()
    assert checks["xla"].ratio == pytest.approx(10 / 12)
    assert "noise" not in checks["xla"].line()
    # batch 64 (plan) 2% slower than 32: slower, flagged as possibly noise
    assert checks["batch"].slower and "noise" in checks["batch"].line()
    assert checks["input"].ratio == pytest.approx(1.0) and not checks["input"].slower
    assert checks["runtime"].ratio == pytest.approx(2.0)
    assert "plan's threads/env vs TensorFlow's default threads/env: 2.00x" in (
        checks["runtime"].line())


def test_plan_check_without_a_figure_is_not_a_number():
    configs = list(configs_for(TWO_CORE_CPU).values())
    measured = {"baseline": ok(10.0), "mixed_precision": Measurement.failed("out of memory")}
    (check,) = plan_checks(configs, measured)
    assert check.ratio is None and "mixed_precision failed" in check.line()


def test_best_of_keeps_the_least_disturbed_run():
    slow, fast = ok(3.0), ok(4.0)
    best = best_of([slow, Measurement.failed("killed by SIGKILL"), fast])
    assert best is fast
    assert best.details["repeats"] == [3.0, None, 4.0]
    assert best.details["failed_repeats"] == ["killed by SIGKILL"]
    failed = best_of([Measurement.failed("first"), Measurement.failed("second")])
    assert not failed.ok and failed.reason == "first"
    single = ok(5.0)
    assert best_of([single]) is single and "repeats" not in single.details


# --- tables and result ------------------------------------------------------------------------

def table_rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in table.splitlines() if not set(line) <= set("|:-")]


def test_before_after_table_shape():
    rows = table_rows(before_after_table(ok(10.0, compile=4.0, memory=1000.0),
                                         ok(20.0, compile=5.0, memory=1200.0),
                                         n_images=56_092, epochs=30))
    assert rows[0] == ["Metric", "Before (baseline)", "After (planned)", "Change"]
    assert [r[0] for r in rows[1:]] == [
        "images/s (after warm-up)", "compile, first call (s)",
        "peak memory (MB, process peak RSS)", "GPU utilisation (%)", "epoch, 56,092 images",
        "full training, 30 epochs"]
    assert all(len(r) == 4 for r in rows)
    assert rows[1][1:] == ["10.0", "20.0", "2.00x (+100%)"]
    assert rows[2][3] == "+1.0 s" and rows[3][3] == "+200 MB"
    assert rows[4][1:3] == ["n/a", "n/a"]
    assert rows[5][1:] == [format_duration(5609.2), format_duration(2804.6), "0.50x (-50%)"]


def test_failed_side_shows_failed_never_a_number():
    rows = table_rows(before_after_table(Measurement.failed("boom"), ok(20.0),
                                         n_images=100, epochs=2))
    assert all(r[1] == "FAILED" and r[3] == "-" for r in rows[1:])
    assert rows[1][2] == "20.0"
    rows = table_rows(before_after_table(ok(5.0), None, n_images=100, epochs=2))
    assert all(r[2] == "not run" for r in rows[1:])


def test_result_table_and_json():
    configs = list(configs_for(TWO_CORE_CPU).values())
    measured = {"baseline": ok(10.0), "mixed_precision": Measurement.failed("OOM at batch 32"),
                "planned": ok(12.5)}
    measured["baseline"].details.update(load_average_before=1.25, cores_used=1.9)
    chosen = [c for c in configs if c.name in measured]
    result = BenchmarkResult(
        configurations=chosen, measurements=measured, n_images=1000, epochs=3,
        backbone="small_cnn", image_size=64, steps=3, warmup_calls=2,
        data={"path": "/d", "synthetic": True, "images": 321},
        machine={**TWO_CORE_CPU.to_dict(), "tensorflow": "2.21.0"}, plan={}, created="now")
    table = result.table()
    assert "planned vs baseline: 1.25x (at least as fast)" in table
    assert "plan check: precision: plan's float32 vs mixed_float16: not measured" in table
    assert "FAILED: OOM at batch 32" in table
    assert "no GPU; CPU x86_64 2 cores" in table
    assert "load average (1 min) as each configuration started: baseline 1.2" in table
    assert "CPU cores used while measured (of 2; less = other processes took a share): " \
        "baseline 1.9" in table
    rows = table_rows(configurations_table(chosen, measured, n_images=1000))
    assert [r[0] for r in rows] == ["Configuration", "baseline", "mixed_precision", "planned"]
    assert rows[3][3] == "1.25x"
    assert result.failures() == {"mixed_precision": "OOM at batch 32"}

    data = json.loads(json.dumps(result.to_dict()))
    by_name = {row["name"]: row for row in data["configurations"]}
    assert by_name["planned"]["projection"]["epoch_seconds"] == pytest.approx(80.0)
    assert by_name["planned"]["projection"]["training_seconds"] == pytest.approx(240.0)
    assert by_name["mixed_precision"]["projection"] is None
    assert by_name["mixed_precision"]["measurement"]["images_per_second"] is None
    assert data["planned_vs_baseline"] == pytest.approx(1.25)


def test_exit_reason_names_the_signal_and_last_line(tmp_path):
    log = tmp_path / "w.log"
    log.write_text("loading\nsomething broke\n\n")
    assert exit_reason(-signal.SIGKILL, log).startswith("killed by SIGKILL (the system may")
    assert exit_reason(3, log) == "exited with code 3: something broke"
