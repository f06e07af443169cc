"""The task registry: ``get_task("detect")`` and ``get_task("segment")``.

Example:
    >>> from fisuras.config import Settings
    >>> get_task("detect").section(Settings()).epochs, get_task("segment").noun
    (30, 'segmentation')
"""

from __future__ import annotations

from fisuras.tasks.base import Phase, Task, TaskSpec
from fisuras.tasks.detect import DetectTask
from fisuras.tasks.segment import SegmentTask

__all__ = ["TASKS", "Phase", "Task", "TaskSpec", "adopt_shipped_weights", "get_task"]

TASKS: dict[str, Task] = {task.name: task for task in (DetectTask(), SegmentTask())}


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name is an error listing the known ones."""
    from fisuras.config import SettingsError

    try:
        return TASKS[name]
    except KeyError:
        raise SettingsError(f"unknown task {name!r}; allowed: "
                            f"{', '.join(repr(n) for n in TASKS)}") from None


def adopt_shipped_weights(settings, task: str):
    """``(settings, notes)``: with ``weights`` naming a shipped model, the run takes its network.

    The weights define the network: ``--weights crack-seg-s`` trains a ``unet_light`` whatever
    ``segment.backbone`` said (a note says so). Image size may differ (both shipped networks
    are fully convolutional up to a global pooling). A shipped model of the other task is an
    error naming the right one. Other ``weights`` values pass through untouched.

    Example:
        >>> from fisuras.config import Settings
        >>> settings, notes = adopt_shipped_weights(Settings(weights="crack-seg-s"), "segment")
        >>> settings.segment.backbone, len(notes)
        ('unet_light', 1)
    """
    from fisuras.config import SettingsError
    from fisuras.shipped import RECIPES, shipped_network

    if settings.weights not in RECIPES:
        return settings, []
    shipped_task, backbone = shipped_network(settings.weights)
    if shipped_task != task:
        fitting = [name for name in RECIPES if shipped_network(name)[0] == task]
        raise SettingsError(f"weights={settings.weights}: a {get_task(shipped_task).noun} model "
                            f"cannot start a {get_task(task).noun} run; use "
                            f"{' or '.join(fitting) or 'another model'}")
    key = get_task(task).key("backbone")
    before = get_task(task).section(settings).backbone
    if before == backbone:
        return settings, []
    return (settings.updated({key: backbone}),
            [f"{key}: {before} -> {backbone} (the network of {settings.weights})"])
