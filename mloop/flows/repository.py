"""The seam between flows and storage: the metadata database directly (``_sql.py``) or an mloop server (``_http.py``).

``MLOOP_TRACKING_URI`` picks the server for every reader and writer of flows at once (the orchestrator, its
recorder, resume, the client, the scheduler, a task's ``current``); artifact bytes then move through the server
too (``_http_store.py``) unless the client is configured for direct object-store access
(``MLOOP_DIRECT_ARTIFACTS=1`` with an ``MLOOP_ARTIFACT_ROOT`` the server shares).

>>> store_location(Settings.load(home="/tmp/mloop-doc", tracking_uri="http://mloop:5000"))
'http://mloop:5000'
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from mloop.config import Settings
from mloop.flows._rows import RunRow, TaskRow
from mloop.flows.artifacts import ArtifactRef

__all__ = ["FlowRepository", "Record", "open_flow_repo", "store_location"]

# One write of the recorder: what kind and its values; a batch of them is stored in one transaction.
Record = tuple[Literal["start_task", "finish_task", "set_attempt"], dict[str, Any]]
RECORD_KINDS = frozenset({"start_task", "finish_task", "set_attempt"})


class FlowRepository(Protocol):
    """Everything flows read and write besides artifact bytes; both implementations pass the same tests."""

    # runs
    def experiment_id(self, name: str) -> str: ...
    def create_run(self, *, experiment_id: str, flow_name: str, file: str, params: dict[str, Any],
                   tags: list[str], run_tags: dict[str, str], origin: str | None, executor: str, user: str,
                   run_id: str | None = None) -> str: ...
    def end_run(self, run_id: str, status: str) -> None: ...
    def heartbeat(self, run_ids: list[str]) -> None: ...
    def get_run(self, run_id: str) -> RunRow: ...
    def list_runs(self, flow_name: str | None = None, tag: str | None = None, status: str | None = None,
                  limit: int | None = None, where: Any = None) -> list[RunRow]: ...
    def flow_names(self) -> list[str]: ...
    def add_tags(self, run_id: str, tags: list[str]) -> None: ...
    def remove_tags(self, run_id: str, tags: list[str]) -> None: ...

    # tasks
    def record(self, records: list[Record]) -> None: ...
    def tasks(self, run_id: str) -> list[TaskRow]: ...
    def get_task(self, task_id: str) -> TaskRow: ...
    def cached_task(self, cache_key: str) -> TaskRow | None: ...
    def artifacts(self, task_ids: list[str]) -> dict[str, dict[str, ArtifactRef]]: ...

    # schedules
    def claim_schedule_start(self, flow_name: str, due: int, cron: str, file: str) -> bool: ...
    def set_schedule_run(self, flow_name: str, due: int, run_id: str | None) -> None: ...
    def schedule_starts(self, flow_name: str | None = None) -> list[dict[str, Any]]: ...


def open_flow_repo(settings: Settings) -> FlowRepository:
    """The repository ``settings`` point at: an mloop server by URL, or the metadata database.

    >>> type(open_flow_repo(Settings.load(tracking_uri="http://127.0.0.1:9"))).__name__
    'HttpFlowRepository'
    """
    if settings.remote:
        from mloop.flows._http import HttpFlowRepository

        return HttpFlowRepository(settings.tracking_uri)
    from mloop.flows._sql import SqlFlowRepository
    from mloop.store.blob import open_blob_store
    from mloop.store.sql import open_database

    blobs = open_blob_store(settings.artifact_root)
    return SqlFlowRepository(open_database(settings.db_url), lambda run_id: blobs.url(f"runs/{run_id}/artifacts"),
                             heartbeat_timeout_ms=int(settings.heartbeat_timeout_seconds * 1000))


def store_location(settings: Settings) -> str:
    """Where flow artifacts go, as tasks receive it: the artifact root, or the server's URL when the bytes move
    through the server (see ``mloop.flows.task.artifact_store``)."""
    if settings.remote and not settings.direct_artifacts:
        return settings.tracking_uri
    return settings.artifact_root
