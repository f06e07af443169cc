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

__all__ = ["TASKS", "Phase", "Task", "TaskSpec", "get_task"]

TASKS: dict[str, Task] = {task.name: task for task in (DetectTask(), SegmentTask())}


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name is an error listing the known ones."""
    from fisuras.config import SettingsError

    try:
        return TASKS[name]
    except KeyError:
        raise SettingsError(f"unknown task {name!r}; allowed: "
                            f"{', '.join(repr(n) for n in TASKS)}") from None
