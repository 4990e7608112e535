"""Task paths: a task's name within its run, unique and the same in a run and in its resume.

``train`` is a step's only task, ``train/3`` item 3 of a foreach, ``train/1.0`` item 0 of a foreach nested in
item 1 of another, and ``#n`` after any of them the n-th pass of a loop (``train#2``, ``train/3#2``).

>>> parse_path("train/1.0#2")
TaskPath(step='train', position='1.0', iteration=2)
>>> parse_path("train/1.0#2").index, parse_path("end").index
(0, None)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskPath:
    step: str
    position: str  # "" outside a foreach
    iteration: int  # 1 for the first pass through the step

    @property
    def index(self) -> int | None:
        """The position in the innermost foreach, or None outside a foreach."""
        return int(self.position.rsplit(".", 1)[-1]) if self.position else None


def parse_path(path: str) -> TaskPath:
    base, _, count = path.partition("#")
    step, _, position = base.partition("/")
    return TaskPath(step, position, int(count) if count else 1)
