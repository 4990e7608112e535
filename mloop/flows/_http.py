"""FlowRepository over an mloop server's REST API (``/api/flows``): the client needs no database credentials.

Requests go through the tracking client's transport (keep-alive, the token from MLOOP_TOKEN or ``mloop login``,
retries through a restarting server), so flows and tracking reach the server the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from typing import Any
from urllib.parse import quote

from mloop.errors import InvalidInputError
from mloop.flows._rows import RunRow, TaskRow
from mloop.flows.artifacts import ArtifactRef
from mloop.flows.repository import Record

_RUN_FIELDS = frozenset(f.name for f in fields(RunRow))
_TASK_FIELDS = frozenset(f.name for f in fields(TaskRow))


class HttpFlowRepository:
    """Flow runs, tasks and artifact references through ``mloop server``; see repository.FlowRepository.

    >>> HttpFlowRepository("http://127.0.0.1:9/").base_url
    'http://127.0.0.1:9'
    """

    def __init__(self, base_url: str, transport: Any = None) -> None:
        from mloop.tracking._http import HttpTrackingRepository

        self._api = HttpTrackingRepository(base_url, transport=transport)
        self.base_url = self._api.base_url

    def _call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self._api.call(method, "/flows" + path, json, **kwargs)

    # ---------------------------------------------------------------- runs
    def experiment_id(self, name: str) -> str:
        return str(self._call("POST", "/experiments", {"name": name}, retry=True)["experiment_id"])

    def create_run(self, *, experiment_id: str, flow_name: str, file: str, params: dict[str, Any],
                   tags: list[str], run_tags: dict[str, str], origin: str | None, executor: str, user: str,
                   run_id: str | None = None) -> str:
        # the id is picked here, so a retry after a lost answer finds the run instead of making a second
        body = {"run_id": run_id or uuid.uuid4().hex, "experiment_id": experiment_id, "flow_name": flow_name,
                "file": file, "params": params, "tags": tags, "run_tags": run_tags, "origin": origin,
                "executor": executor, "user": user}
        return str(self._call("POST", "/runs", _jsonable(body), retry=True)["run_id"])

    def end_run(self, run_id: str, status: str) -> None:
        self._call("POST", f"/runs/{_q(run_id)}/end", {"status": status}, retry=True)

    def heartbeat(self, run_ids: list[str]) -> None:
        if run_ids:
            self._call("POST", "/heartbeat", {"run_ids": run_ids}, retry=False)  # the next beat is the retry

    def get_run(self, run_id: str) -> RunRow:
        return _run_row(self._call("GET", f"/runs/{_q(run_id)}/row"))

    def list_runs(self, flow_name: str | None = None, tag: str | None = None, status: str | None = None,
                  limit: int | None = None, where: Any = None) -> list[RunRow]:
        if where is not None:  # a SQL condition does not travel: the server filters by the caller's projects
            raise InvalidInputError(field="where", value=where, expected="None through a server")
        params = {k: v for k, v in {"flow": flow_name, "tag": tag, "status": status, "limit": limit}.items()
                  if v is not None}
        return [_run_row(r) for r in self._call("GET", "/rows", params=params)]

    def flow_names(self) -> list[str]:
        return list(self._call("GET", "/names"))

    def add_tags(self, run_id: str, tags: list[str]) -> None:
        self._call("POST", f"/runs/{_q(run_id)}/tags", {"add": tags}, retry=True)

    def remove_tags(self, run_id: str, tags: list[str]) -> None:
        self._call("POST", f"/runs/{_q(run_id)}/tags", {"remove": tags}, retry=True)

    # ---------------------------------------------------------------- tasks
    def record(self, records: list[Record]) -> None:
        # not retried once sent: a batch the server stored and whose answer was lost would insert its tasks twice
        self._call("POST", "/records", {"records": [{"kind": kind, **_jsonable(values)} for kind, values in records]})

    def tasks(self, run_id: str) -> list[TaskRow]:
        return [_task_row(t) for t in self._call("GET", f"/runs/{_q(run_id)}/task-rows")]

    def get_task(self, task_id: str) -> TaskRow:
        return _task_row(self._call("GET", f"/tasks/{_q(task_id)}"))

    def cached_task(self, cache_key: str) -> TaskRow | None:
        found = self._call("GET", f"/cache/{_q(cache_key)}")
        return None if found is None else _task_row(found)

    def artifacts(self, task_ids: list[str]) -> dict[str, dict[str, ArtifactRef]]:
        found: dict[str, dict[str, ArtifactRef]] = {}
        for i in range(0, len(task_ids), 1000):  # the server takes at most 1000 ids a request
            answer = self._call("POST", "/artifact-refs", {"task_ids": task_ids[i:i + 1000]}, retry=True)
            found |= {tid: {name: ArtifactRef(*ref) for name, ref in refs.items()} for tid, refs in answer.items()}
        return found

    # ---------------------------------------------------------------- schedules
    def claim_schedule_start(self, flow_name: str, due: int, cron: str, file: str) -> bool:
        body = {"flow_name": flow_name, "due": due, "cron": cron, "file": file}
        return bool(self._call("POST", "/schedules/claim", body, retry=False)["claimed"])

    def set_schedule_run(self, flow_name: str, due: int, run_id: str | None) -> None:
        self._call("POST", "/schedules/run", {"flow_name": flow_name, "due": due, "run_id": run_id}, retry=True)

    def schedule_starts(self, flow_name: str | None = None) -> list[dict[str, Any]]:
        params = {"flow": flow_name} if flow_name else {}
        return list(self._call("GET", "/schedules", params=params))


def _q(value: str) -> str:
    return quote(str(value), safe="")


def _jsonable(value: Any) -> Any:
    """Values as JSON carries them; anything else (a parameter that is a date, a set) as its text, as the
    database stores it."""
    import orjson

    options = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    return orjson.loads(orjson.dumps(value, default=_plain, option=options))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else str(value)  # an ArtifactRef is a tuple subclass


def _run_row(data: dict[str, Any]) -> RunRow:
    return RunRow(**{k: v for k, v in data.items() if k in _RUN_FIELDS})


def _task_row(data: dict[str, Any]) -> TaskRow:
    return TaskRow(**{k: v for k, v in data.items() if k in _TASK_FIELDS})
