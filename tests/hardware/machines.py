"""Described machines: the hardware facts the plan tests and the plan matrix share.

None of these GPUs is part of this project's workflow; each is described as ``nvidia-smi`` or
TensorFlow would report it, so the plan can be made for it and run on the CPU.
"""

from __future__ import annotations

from fisuras.hardware.facts import GpuFacts, HardwareFacts

RTX_2050 = GpuFacts("NVIDIA GeForce RTX 2050", (8, 6), 4096)
GTX_1650 = GpuFacts("NVIDIA GeForce GTX 1650", (7, 5), 4096)
A100 = GpuFacts("NVIDIA A100-SXM4-40GB", (8, 0), 40960)
GTX_1080 = GpuFacts("NVIDIA GeForce GTX 1080", (6, 1), 8192)
RTX_3060 = GpuFacts("NVIDIA GeForce RTX 3060", (8, 6), 12288)

LAPTOP_WSL = HardwareFacts(gpus=(RTX_2050,), cpu_cores=8, os="linux", wsl2=True, memory_mb=16000)
CPU_LAPTOP = HardwareFacts(cpu_cores=2, os="linux", memory_mb=8000)

# The plan matrix: the seed's laptop, a card without tensor cores, a data-centre card, a machine
# with two GPUs, and no GPU at all.
MACHINES = {
    "rtx2050_wsl2": LAPTOP_WSL,
    "gtx1650": HardwareFacts(gpus=(GTX_1650,), cpu_cores=4, memory_mb=16000),
    "a100": HardwareFacts(gpus=(A100,), cpu_cores=32, memory_mb=256000),
    "two_gpus": HardwareFacts(gpus=(RTX_3060, RTX_3060), cpu_cores=16, memory_mb=64000),
    "cpu": CPU_LAPTOP,
}
