"""The plan matrix: every plan a described machine gets, as cells the CPU can run.

A cell is what changes the compiled training graph: precision policy, XLA, steps per execution
and replicas. Machines that get the same cell share its run (the GPU's name does not reach the
graph).

Run as a program by ``test_plan_matrix.py``, a group of cells per fresh process (XLA compiles
on one core, so groups run side by side; a process holds one MirroredStrategy, and the CPU can
only be split into logical devices before TensorFlow starts)::

    python -m tests.train.plan_matrix OUT_DIR --replicas 2
    python -m tests.train.plan_matrix OUT_DIR --replicas 1 --xla on

It prints one JSON line per cell and task.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from fisuras.config import Settings, load_settings
from fisuras.data import synthesize
from fisuras.hardware.plan import Plan, make_plan
from tests.hardware.machines import MACHINES

# What a user can ask for (config.py's GPU_CONFIG and gpu.precision), XLA on and off.
REQUESTS = {
    "float16": {"gpu.enable_mixed_precision": True},
    "bfloat16": {"gpu.enable_mixed_precision": True, "gpu.precision": "bfloat16"},
    "float32": {"gpu.enable_mixed_precision": False},
}
TASKS = ("detect", "segment")
TINY = {"detect.backbone": "small_cnn", "segment.backbone": "unet_light", "weights": "none",
        "detect.image_size": 32, "segment.image_size": 32, "detect.batch_size": 8,
        "segment.batch_size": 8, "segment.min_steps_per_epoch": 0,
        "detect.epochs": 1, "segment.epochs": 1, "deterministic": True, "cache": "memory",
        "devices": "all"}


class Cell(NamedTuple):
    precision: str
    xla: bool
    steps_per_execution: int
    replicas: int

    @property
    def name(self) -> str:
        return (f"{self.precision}-{'xla' if self.xla else 'noxla'}-spe{self.steps_per_execution}"
                f"-x{self.replicas}")


def request_settings(request: str, xla: bool, **extra) -> Settings:
    return load_settings(overrides={**TINY, **REQUESTS[request], "gpu.enable_xla": xla, **extra})


def machine_plans() -> dict[tuple[str, str, bool], Plan]:
    """(machine, request, xla asked) -> the plan that machine gets."""
    return {
        (machine, request, xla): make_plan(facts, request_settings(request, xla))
        for machine, facts in MACHINES.items() for request in REQUESTS for xla in (True, False)
    }


def cell_of(plan: Plan) -> Cell:
    return Cell(plan.precision, plan.xla, plan.steps_per_execution, plan.replicas)


def cells() -> dict[Cell, list[str]]:
    """Every distinct cell, with the machines whose plans fall in it."""
    found: dict[Cell, list[str]] = {}
    for (machine, _request, _xla), plan in machine_plans().items():
        machines = found.setdefault(cell_of(plan), [])
        if machine not in machines:
            machines.append(machine)
    return found


def first_case(cell: Cell) -> tuple[str, str, bool]:
    """The first (machine, request, xla asked) whose plan falls in ``cell``."""
    return next(key for key, plan in machine_plans().items() if cell_of(plan) == cell)


def tiny_data(out_dir):
    """96 detection patches and 24 segmentation pairs, 64 px: enough for a few steps a split."""
    return synthesize(out_dir, n_per_class_per_surface=16, n_seg=24, image_size=64, seed=5)


def run_cell(cell: Cell, task: str, data, runs_dir, *, strategy=None, apply=None) -> dict:
    """Train, evaluate and export a tiny ``task`` model under the cell's plan; what happened."""
    from fisuras.infer.export import export_model
    from fisuras.train import WorkerRole, train

    machine, request, xla = first_case(cell)
    settings = request_settings(request, xla, runs_dir=str(runs_dir), run_name=cell.name)
    plan = make_plan(MACHINES[machine], settings)
    assert cell_of(plan) == cell
    if apply is not None:
        apply(plan)
    source = data.sdnet_dir if task == "detect" else data.seg_dir
    result = train(task, source, settings, plan, verbose=0, role=WorkerRole(strategy=strategy),
                   log=lambda message: None)
    exported = export_model(result.run.path, "savedmodel", result.run.path / "exported")
    recorded = result.run.read_json("plan.json")
    return {"cell": cell.name, "task": task, "finished": result.state.finished,
            "epochs": [row["epoch"] for row in result.history],
            "loss": [row["loss"] for row in result.history],
            "metrics_written": result.run.file("metrics.json").is_file(),
            "plan_precision": recorded["precision"], "plan_xla": recorded["xla"],
            "fallbacks": recorded["fallbacks"],
            "export_converted": exported.converted_to_float32,
            "export_diff": exported.max_abs_diff, "export_tolerance": exported.tolerance}


def overridden_turbo_still_fails(strategy) -> dict[str, bool]:
    """The two settings the plan turns off with several replicas, each alone on a dense model.

    True means it still fails here (the plan's rule stands); False means Keras/TF fixed it and
    the rule in ``fisuras.hardware.plan`` should be revisited.
    """
    import keras
    import numpy as np

    fails = {}
    for name, xla, steps in (("xla", True, 1), ("steps_per_execution", False, 8)):
        with strategy.scope():
            inputs = keras.Input((8, 8, 3))
            pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
            model = keras.Model(inputs, keras.layers.Dense(1)(pooled))
            model.compile("adam", "mse", jit_compile=xla, steps_per_execution=steps)
        try:
            model.fit(np.zeros((64, 8, 8, 3)), np.zeros((64, 1)), batch_size=16, verbose=0)
            fails[name] = False
        except Exception:  # noqa: BLE001 (any failure of the step is what is being checked)
            fails[name] = True
    return fails


def group(replicas: int, xla: str) -> list[Cell]:
    """The cells with ``replicas`` and XLA ``"on"``, ``"off"`` or ``"any"``."""
    return [cell for cell in cells() if cell.replicas == replicas
            and (xla == "any" or cell.xla == (xla == "on"))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--xla", choices=["on", "off", "any"], default="any")
    args = parser.parse_args(argv)
    chosen = group(args.replicas, args.xla)
    strategy = None
    if args.replicas > 1:
        from fisuras.distribute import make_strategy

        # The same replicas on the CPU's logical devices: the plan's device is all that changes.
        plan = machine_plans()[first_case(chosen[0])]
        strategy = make_strategy(replace(plan, device="cpu"))  # before TensorFlow starts
        print(json.dumps({"overridden_turbo_still_fails": overridden_turbo_still_fails(
            strategy)}), flush=True)
    from fisuras.hardware.apply import apply_tensorflow

    out = Path(args.out_dir)
    data = tiny_data(out / "data")
    for cell in chosen:
        for task in TASKS:
            outcome = run_cell(cell, task, data, out / "runs" / task, strategy=strategy,
                               apply=apply_tensorflow)
            print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
