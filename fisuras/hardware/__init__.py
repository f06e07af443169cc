"""Hardware: read the facts, plan from them (pure), apply the plan, and check the machine.

The usual entry point is :func:`configure`, which the seed door
``configurar_gpu_maxima_velocidad`` calls.
"""

from __future__ import annotations

import sys

from fisuras.config import Settings
from fisuras.hardware.apply import AppliedPlan, apply_environment, apply_tensorflow
from fisuras.hardware.facts import GpuFacts, HardwareFacts, detect_facts
from fisuras.hardware.plan import Plan, make_plan

__all__ = [
    "AppliedPlan", "GpuFacts", "HardwareFacts", "Plan", "configure", "detect_facts", "make_plan",
]

_applied: AppliedPlan | None = None
_detected: HardwareFacts | None = None


def configure(settings: Settings, *, verbose: bool = False, facts: HardwareFacts | None = None,
              import_tensorflow: bool = True) -> AppliedPlan:
    """Detect, plan and apply; a second call with the same plan returns the same applied plan.

    Environment variables are set first (they only work before TensorFlow starts); then, unless
    ``import_tensorflow`` is False, TensorFlow is imported and the rest is applied. Called again
    with settings that give another plan, it applies that plan; what TensorFlow cannot change
    once started (environment, threads, GPU memory) is named in the notes, never silently kept.

    Example:
        >>> from fisuras.config import load_settings
        >>> applied = configure(load_settings())  # doctest: +SKIP
        >>> applied.plan.precision  # doctest: +SKIP
        'float32'
    """
    global _applied, _detected
    if facts is None:
        _detected = _detected or detect_facts()  # hardware does not change within a process
    plan = make_plan(facts or _detected, settings)
    if _applied is not None and _applied.plan != plan:
        previous = _applied
        _applied = AppliedPlan(plan=plan, notes=[
            "another plan was applied earlier in this process; this one replaces it",
            *apply_environment(plan)])
        if previous.tensorflow_applied and not import_tensorflow:
            import_tensorflow = True  # TensorFlow runs already: the new plan must reach it
    elif _applied is None:
        _applied = AppliedPlan(plan=plan, notes=apply_environment(plan))
    if import_tensorflow and not _applied.tensorflow_applied:
        _applied.notes.extend(apply_tensorflow(_applied.plan))
        _applied.tensorflow_applied = True
    if verbose:
        print(describe_applied(_applied), file=sys.stdout)
    return _applied


def describe_applied(applied: AppliedPlan) -> str:
    """A short report: the plan's choices with reasons, then any notes."""
    plan = applied.plan
    head = ("fisuras: GPU plan" if plan.device == "gpu"
            else f"fisuras: no GPU, falling back to the CPU ({plan.reasons.get('device', '')})")
    lines = [head, plan.describe()]
    lines += [f"note: {note}" for note in applied.notes]
    return "\n".join(lines)
