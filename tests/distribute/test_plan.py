"""What the plan chooses for devices/workers, and how the input is sharded (pure)."""

from __future__ import annotations

import pytest

from fisuras.config import Settings
from fisuras.distribute import choose_sharding
from fisuras.hardware.facts import GpuFacts, HardwareFacts
from fisuras.hardware.plan import make_plan

RTX = GpuFacts("NVIDIA GeForce RTX 3060", (8, 6), 12288)
CPU_ONLY = HardwareFacts(cpu_cores=2)


def plan(facts=CPU_ONLY, **settings):
    return make_plan(facts, Settings(**settings))


@pytest.mark.parametrize("facts, settings, strategy, replicas, local", [
    (CPU_ONLY, {}, "default", 1, 1),
    (CPU_ONLY, {"devices": "all"}, "default", 1, 1),  # no GPUs: "all" is the one CPU
    (CPU_ONLY, {"devices": 2}, "mirrored", 2, 2),  # logical CPU devices
    (HardwareFacts(gpus=(RTX, RTX), cpu_cores=8), {"devices": "all"}, "mirrored", 2, 2),
    (HardwareFacts(gpus=(RTX, RTX), cpu_cores=8), {"devices": 4}, "mirrored", 2, 2),  # capped
    (HardwareFacts(gpus=(RTX,), cpu_cores=8), {"devices": "all"}, "default", 1, 1),
    (CPU_ONLY, {"workers": 2}, "multi_worker", 2, 1),
    (HardwareFacts(gpus=(RTX, RTX), cpu_cores=8), {"workers": 3, "devices": "all"},
     "multi_worker", 6, 2),
])
def test_the_plan_picks_the_strategy_and_counts_replicas(facts, settings, strategy, replicas,
                                                         local):
    chosen = plan(facts, **settings)
    assert (chosen.strategy, chosen.replicas, chosen.local_devices) == (strategy, replicas, local)
    assert chosen.workers == settings.get("workers", 1)
    assert chosen.reasons["strategy"]  # and it says why


def test_reasons_name_the_strategy_and_the_cap():
    capped = plan(HardwareFacts(gpus=(RTX, RTX), cpu_cores=8), devices=4)
    assert "MirroredStrategy" in capped.reasons["strategy"] and "asked 4" in capped.reasons[
        "strategy"]
    multi = plan(workers=2)
    assert "MultiWorkerMirroredStrategy" in multi.reasons["strategy"]
    assert "FILE" in multi.reasons["sharding"] and "DATA" in multi.reasons["sharding"]
    assert "logical CPU" in plan(devices=2).reasons["strategy"]


def test_global_batch_and_learning_rate_scale_with_replicas():
    one = plan(batch_size=32, reference_batch_size=64)
    four = plan(HardwareFacts(gpus=(RTX, RTX), cpu_cores=8), batch_size=32, devices="all",
                workers=2, reference_batch_size=64)
    assert one.global_batch_size == 32 and one.learning_rate_scale == 0.5
    assert four.replicas == 4 and four.global_batch_size == 128
    assert four.learning_rate_scale == 4 * one.learning_rate_scale  # linear scaling rule
    assert "128 (32 per replica x 4 replicas)" in four.reasons["learning_rate"]
    text = four.describe()
    assert "128 = 32 x 4" in text and "sharding" in text
    # the out-of-memory back-off keeps the replicas: a smaller per-replica batch, scaled rate
    smaller = four.with_batch(16)
    assert smaller.global_batch_size == 64 and smaller.learning_rate_scale == 1.0


def test_sharding_is_by_file_unless_a_split_is_smaller_than_a_global_batch():
    assert choose_sharding(1000, 1, 64).policy is None
    by_file = choose_sharding(1001, 2, 64)
    assert by_file.policy == "file" and "500 of 1001" in by_file.reason
    assert "1 file(s) left out" in by_file.reason
    by_data = choose_sharding(40, 2, 64)
    assert by_data.policy == "data" and "fewer than one global batch" in by_data.reason
    assert choose_sharding(64, 2, 64).policy == "file"
