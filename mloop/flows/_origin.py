"""The resume fast path: the run to resume, its finished tasks and their artifact references, read from a SQLite
metadata database with the standard library's ``sqlite3`` in one read transaction.

Why: a resume must know which tasks it reuses before it can launch the first one it re-runs, and the repository
(``_sql.py``) needs SQLAlchemy, whose import takes most of the time a small resume has. Reading here lets the
re-run steps start while the recorder's thread still imports it, so reusing finished steps costs less than
running them. Anything out of the ordinary (another database, a run id prefix, no such run, a file that is not
readable or not at the current schema) returns None and the caller asks the repository, which also words the
errors.

>>> read_origin("postgresql+psycopg://db/mloop", "Train", None) is None
True
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from urllib.parse import quote

from mloop.flows._rows import RunRow, TaskRow, run_row, task_row
from mloop.flows.artifacts import ArtifactRef

Origin = tuple[RunRow, list[TaskRow], dict[str, dict[str, ArtifactRef]]]

_LATEST = "SELECT * FROM flow_runs WHERE flow_name = ? ORDER BY created DESC, run_id DESC LIMIT 1"
_BY_ID = "SELECT * FROM flow_runs WHERE run_id = ?"
_TAGS = "SELECT tag FROM flow_run_tags WHERE run_id = ?"
# every finished task with its artifact references (NULLs for a task without any), in the repository's order
_TASKS = ("SELECT t.*, a.name AS a_name, a.sha256 AS a_sha256, a.encoding AS a_encoding, a.size AS a_size "
          "FROM flow_tasks t LEFT JOIN flow_artifacts a ON a.task_id = t.task_id "
          "WHERE t.run_id = ? AND t.status = 'finished' ORDER BY t.started, t.path, a.name")


def sqlite_path(db_url: str) -> str | None:
    """The file of a plain ``sqlite:///path`` URL; None for anything this module leaves to SQLAlchemy
    (other databases, query options, percent-escapes).

    >>> sqlite_path("sqlite:////home/me/.mloop/mloop.db"), sqlite_path("sqlite:///db?mode=ro")
    ('/home/me/.mloop/mloop.db', None)
    """
    prefix = "sqlite:///"
    if not db_url.startswith(prefix) or any(c in db_url for c in "?%#"):
        return None
    path = db_url[len(prefix):]
    return path if path and path != ":memory:" else None


def read_origin(db_url: str, flow_name: str, run_id: str | None) -> Origin | None:
    """The run ``run_id`` (a full 32-character id; None: ``flow_name``'s latest run), its finished tasks and
    their artifacts; None when the fast path does not apply or finds nothing (the caller then asks the
    repository)."""
    path = sqlite_path(db_url)
    if path is None or (run_id is not None and len(run_id) != 32) or not os.path.isfile(path):
        return None
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=60,
                               isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.row_factory = _as_dict
        conn.execute("BEGIN")  # one snapshot: the run and its tasks as they were at one moment
        return _read(conn, flow_name, run_id)
    except sqlite3.Error:  # locked past the timeout, an older schema, not a database: the full path decides
        return None
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, flow_name: str, run_id: str | None) -> Origin | None:
    run = conn.execute(*((_LATEST, (flow_name,)) if run_id is None else (_BY_ID, (run_id,)))).fetchone()
    if run is None:
        return None
    tags = sorted(r["tag"] for r in conn.execute(_TAGS, (run["run_id"],)))
    tasks: dict[str, TaskRow] = {}
    artifacts: dict[str, dict[str, ArtifactRef]] = {}
    for row in conn.execute(_TASKS, (run["run_id"],)):
        task_id = row["task_id"]
        if task_id not in tasks:
            tasks[task_id] = task_row(row)
            artifacts[task_id] = {}
        if row["a_name"] is not None:
            artifacts[task_id][row["a_name"]] = ArtifactRef(row["a_sha256"], row["a_encoding"], row["a_size"])
    return run_row(run, tags), list(tasks.values()), artifacts


def _as_dict(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}
