"""A flow run and a task as read from the metadata database, free of SQLAlchemy so that the resume fast path
(``_origin.py``, plain ``sqlite3``) builds the same rows as the repository (``_sql.py``).

>>> task_row({"task_id": "t", "run_id": "r", "step": "start", "path": "start", "status": "finished",
...           "attempt": 0, "inputs": '["<params>"]', "transition": None, "cache_key": None,
...           "reused_from": None, "error": None, "log_dir": None, "stdout_sha": None, "stderr_sha": None,
...           "started": 1, "ended": 2}).inputs
['<params>']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    run_id: str
    flow_name: str
    file: str
    status: str
    params: dict[str, Any]
    origin_run_id: str | None
    executor: str
    created: int
    ended: int | None
    tags: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRow:
    task_id: str
    run_id: str
    step: str
    path: str
    status: str
    attempt: int
    inputs: list[str]
    transition: dict[str, Any] | None
    cache_key: str | None
    reused_from: str | None
    error: str | None
    log_dir: str | None
    stdout_sha: str | None
    stderr_sha: str | None
    started: int
    ended: int | None


def task_row(row: Any) -> TaskRow:
    """A TaskRow from a ``flow_tasks`` row (an SQLAlchemy row, or any mapping of its columns)."""
    r = row if isinstance(row, Mapping) else row._mapping
    return TaskRow(task_id=r["task_id"], run_id=r["run_id"], step=r["step"], path=r["path"], status=r["status"],
                   attempt=r["attempt"], inputs=json.loads(r["inputs"]),
                   transition=json.loads(r["transition"]) if r["transition"] else None, cache_key=r["cache_key"],
                   reused_from=r["reused_from"], error=r["error"], log_dir=r["log_dir"], stdout_sha=r["stdout_sha"],
                   stderr_sha=r["stderr_sha"], started=r["started"], ended=r["ended"])


def run_row(row: Any, tags: list[str]) -> RunRow:
    """A RunRow from a ``flow_runs`` row (an SQLAlchemy row, or any mapping of its columns) and its tags."""
    r = row if isinstance(row, Mapping) else row._mapping
    return RunRow(run_id=r["run_id"], flow_name=r["flow_name"], file=r["file"], status=r["status"],
                  params=json.loads(r["params"]), origin_run_id=r["origin_run_id"], executor=r["executor"],
                  created=r["created"], ended=r["ended"], tags=tags)
