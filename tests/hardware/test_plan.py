"""The plan for described hardware: each choice and its reason (pure, no TensorFlow)."""

from __future__ import annotations

import pytest

from fisuras.config import load_settings
from fisuras.hardware.facts import GpuFacts, HardwareFacts, parse_nvidia_smi_csv
from fisuras.hardware.plan import is_out_of_memory, make_plan
from tests.hardware.machines import A100, CPU_LAPTOP, GTX_1080, GTX_1650, LAPTOP_WSL, RTX_2050


def plan_for(facts, **overrides):
    return make_plan(facts, load_settings(overrides=overrides))


def test_rtx_2050_laptop_gets_the_turbo_setup():
    plan = plan_for(LAPTOP_WSL)
    assert plan.device == "gpu"
    assert plan.precision == "mixed_float16" and "tensor cores" in plan.reasons["precision"]
    assert "bfloat16" in plan.reasons["precision"]  # offered on 8.x
    assert plan.xla is True
    assert plan.memory_growth and plan.memory_limit_mb is None
    assert plan.batch_size == 64 and plan.batch_ladder[:3] == (64, 56, 48)
    assert "seed's advice" in plan.reasons["batch_size"]
    assert plan.env["TF_GPU_ALLOCATOR"] == "cuda_malloc_async"
    assert "TF_ENABLE_ONEDNN_OPTS" not in plan.env
    assert plan.intra_op_threads == 8


def test_rtx_2050_caps_an_oversized_batch_at_64():
    plan = plan_for(LAPTOP_WSL, batch_size=128)
    assert plan.batch_size == 64 and "capped from 128" in plan.reasons["batch_size"]


def test_gtx_1650_refuses_fp16_and_says_why():
    plan = plan_for(HardwareFacts(gpus=(GTX_1650,), cpu_cores=4))
    assert plan.precision == "float32"
    assert "GTX 16" in plan.reasons["precision"] and "NaN" in plan.reasons["precision"]
    assert plan.xla is True  # XLA still pays on a GPU


def test_pre_volta_gpu_has_no_tensor_cores():
    plan = plan_for(HardwareFacts(gpus=(GTX_1080,), cpu_cores=4))
    assert plan.precision == "float32" and "6.1 < 7.0" in plan.reasons["precision"]


def test_a100_offers_bfloat16_when_asked():
    assert plan_for(HardwareFacts(gpus=(A100,), cpu_cores=32)).precision == "mixed_float16"
    bf16 = plan_for(HardwareFacts(gpus=(A100,), cpu_cores=32), **{"gpu.precision": "bfloat16"})
    assert bf16.precision == "mixed_bfloat16"
    # a big card keeps the requested batch without the 4 GB cap
    assert plan_for(HardwareFacts(gpus=(A100,)), batch_size=256).batch_size == 256


def test_bfloat16_needs_ampere():
    plan = plan_for(HardwareFacts(gpus=(GpuFacts("Tesla T4", (7, 5), 15360),)),
                    **{"gpu.precision": "bfloat16"})
    assert plan.precision == "mixed_float16" and "8.0+" in plan.reasons["precision"]


def test_cpu_laptop_overrides_the_gpu_requests_with_measured_reasons():
    plan = plan_for(CPU_LAPTOP)
    assert plan.device == "cpu"
    assert plan.precision == "float32" and "overridden" in plan.reasons["precision"]
    assert plan.xla is False and "slows" in plan.reasons["xla"]
    assert "BENCHMARKS.md" in plan.reasons["xla"]
    assert plan.env["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert "TF_XLA_FLAGS" not in plan.env
    assert (plan.intra_op_threads, plan.inter_op_threads) == (2, 1)
    assert plan.steps_per_execution == 1
    assert "falling back to the CPU" in plan.reasons["device"]


def test_native_windows_is_told_to_use_wsl2():
    plan = plan_for(HardwareFacts(cpu_cores=8, os="windows"))
    assert plan.device == "cpu" and "WSL2" in plan.reasons["device"]


def test_two_gpus_use_the_weakest_card_and_mirror_when_asked():
    facts = HardwareFacts(gpus=(A100, GTX_1080), cpu_cores=16)
    single = plan_for(facts)
    assert single.precision == "float32"  # the 1080 cannot do FP16 fast
    assert single.strategy == "default" and single.replicas == 1
    mirrored = plan_for(HardwareFacts(gpus=(A100, A100), cpu_cores=16), devices="all")
    assert mirrored.strategy == "mirrored" and mirrored.replicas == 2
    assert mirrored.global_batch_size == 128 and mirrored.learning_rate_scale == 2.0
    # the turbo's compiled multi-step loop fails under tf.distribute (see the plan matrix)
    assert mirrored.xla is False and "several replicas" in mirrored.reasons["xla"]
    assert mirrored.steps_per_execution == 1 and "19246" in mirrored.reasons["steps_per_execution"]
    assert "TF_XLA_FLAGS" not in mirrored.env


def test_flags_off_are_respected_on_a_gpu():
    plan = plan_for(LAPTOP_WSL, **{"gpu.enable_mixed_precision": False, "gpu.enable_xla": False,
                                   "gpu.memory_limit_mb": 3072})
    assert plan.precision == "float32" and "not requested" in plan.reasons["precision"]
    assert plan.xla is False and "TF_XLA_FLAGS" not in plan.env
    assert plan.memory_limit_mb == 3072 and plan.memory_growth is False


def test_memory_limit_above_the_card_is_capped():
    plan = plan_for(LAPTOP_WSL, **{"gpu.memory_limit_mb": 8000})
    assert plan.memory_limit_mb == 4096 and "capped" in plan.reasons["memory"]


def test_plan_is_pure_and_describes_every_choice():
    first, second = plan_for(LAPTOP_WSL), plan_for(LAPTOP_WSL)
    assert first == second
    text = first.describe()
    for word in ("precision", "xla", "memory", "threads", "prefetch", "batch_size", "strategy"):
        assert word in text


def test_with_batch_walks_the_ladder_down():
    plan = plan_for(LAPTOP_WSL).with_batch(56)
    assert plan.batch_size == 56 and plan.batch_ladder[:2] == (56, 48)
    assert plan.learning_rate_scale == 56 / 64  # linear scaling follows the batch
    assert plan_for(LAPTOP_WSL).with_batch(20).batch_ladder[:2] == (20, 16)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("NVIDIA GeForce RTX 2050, 8.6, 4096", RTX_2050),
        ("Tesla K80, 3.7, 11441", GpuFacts("Tesla K80", (3, 7), 11441)),
        ("Odd GPU, [N/A], [N/A]", GpuFacts("Odd GPU", None, None)),
    ],
)
def test_parse_nvidia_smi(line, expected):
    assert parse_nvidia_smi_csv(line + "\n") == [expected]


def test_segmentation_gets_its_own_batch_for_the_card_and_the_crop():
    laptop = plan_for(LAPTOP_WSL)
    assert laptop.batch_size == 64 and laptop.segment_batch_size == 8  # 8 crops of 256 px, 4 GB
    assert "detection batch" in laptop.reasons["segment_batch"]
    assert plan_for(HardwareFacts(gpus=(A100,)),).segment_batch_size == 32  # 40 GB: capped x4
    assert plan_for(CPU_LAPTOP).segment_batch_size == 8
    assert plan_for(CPU_LAPTOP, image_size_segment=128).segment_batch_size == 32  # 4x smaller
    assert plan_for(CPU_LAPTOP, batch_size_segment=5).segment_batch_size == 5
    # the segmentation plan: its batch, a ladder below it, rates given for batch 8
    segment = plan_for(CPU_LAPTOP, batch_size_segment=16).for_segmentation()
    assert segment.batch_size == 16 and segment.batch_ladder[:2] == (16, 8)
    assert segment.learning_rate_scale == 2.0


def test_out_of_memory_is_told_by_class_or_message_without_tensorflow():
    class ResourceExhaustedError(Exception):  # TensorFlow's name; a subclass counts too
        pass

    class GpuOutOfMemory(ResourceExhaustedError):
        pass

    assert is_out_of_memory(GpuOutOfMemory("no room"))
    assert is_out_of_memory(RuntimeError("Graph execution error:\n\nOOM when allocating tensor"))
    assert is_out_of_memory(RuntimeError("status: RESOURCE_EXHAUSTED: out of memory"))
    assert not is_out_of_memory(ValueError("Incompatible shapes"))
