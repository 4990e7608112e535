"""TrackingRepository over an mloop server's REST API (keep-alive, batched metrics)."""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pandas as pd

from mloop._util.names import check_artifact_path
from mloop.auth.credentials import token_for
from mloop.errors import BackendError, DataIntegrityError, MloopError, error_class
from mloop.store.blob.base import hash_stream
from mloop.tracking._wire import float_in, float_out, frame_in
from mloop.tracking.entities import Artifact, Dataset, Experiment, Metric, Run, RunStatus
from mloop.tracking.repository import MetricRow

_METRIC_CHUNK = 50_000
_ARTIFACT_CHUNK = 8 << 20  # bytes of a large artifact per request: what a broken upload sends again at most
_TRANSFER_ATTEMPTS = 8  # broken downloads resumed, or uploads answered without progress, before giving up
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
_UNAVAILABLE = frozenset({502, 503, 504})  # a proxy or the server says: not now, try again
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # nothing reached the server: any call may retry


class HttpTrackingRepository:
    """Talks to ``mloop server``; artifacts stream through it, so clients need no bucket credentials."""

    atomic_rows = _METRIC_CHUNK  # metric points sent in one request, stored in one transaction

    def __init__(self, base_url: str, timeout: float = 60.0, transport: httpx.BaseTransport | None = None,
                 retry_seconds: float = 30.0, chunk_bytes: int = _ARTIFACT_CHUNK) -> None:
        self.base_url = base_url.rstrip("/")
        self.chunk_bytes = chunk_bytes  # artifacts larger than this go in chunks that survive a broken connection
        self.retry_seconds = retry_seconds  # how long a call keeps trying through a restarting server
        token = token_for(self.base_url)  # MLOOP_TOKEN or `mloop login`; the server checks it when auth is on
        self.http = httpx.Client(base_url=self.base_url + "/api", timeout=timeout, transport=transport,
                                 limits=httpx.Limits(max_keepalive_connections=8),
                                 headers={"Authorization": f"Bearer {token}"} if token else None)

    def _call(self, method: str, path: str, json: Any = None, *, retry: bool | None = None, **kwargs: Any) -> Any:
        """One request; idempotent calls (``retry``, by default GET, PUT, PATCH and DELETE) outlive a restart.

        A call that never reached the server (the connection was refused) is retried unless ``retry`` is
        False; one that may have been applied is retried only when applying it twice changes nothing.
        """
        if json is not None:
            kwargs["content"] = orjson.dumps(json)
            kwargs.setdefault("headers", {})["content-type"] = "application/json"
        idempotent = method in _IDEMPOTENT if retry is None else retry
        rewind = _rewinder(kwargs.get("content"))
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                may_retry = retry is not False and (
                    isinstance(exc, _NOT_SENT) or (idempotent and isinstance(exc, httpx.TransportError)))
                if not (may_retry and rewind and time.monotonic() + delay < deadline):
                    raise BackendError(f"The mloop server at {self.base_url} did not answer: {exc}") from exc
            else:
                retryable = idempotent and response.status_code in _UNAVAILABLE
                if not (retryable and rewind and time.monotonic() + delay < deadline):
                    break
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            rewind()
        if response.status_code >= 400:
            _raise(response)
        if response.status_code == 204:  # No Content (FastAPI still labels it JSON)
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return orjson.loads(response.content)
        return response.content

    def call(self, method: str, path: str, json: Any = None, *, retry: bool | None = None, **kwargs: Any) -> Any:
        """One request to any route under the server's ``/api``, with this client's token, retries and errors;
        the other capabilities' HTTP transports (registry, features, validation, flows, auth) share it instead
        of opening their own."""
        return self._call(method, path, json, retry=retry, **kwargs)

    # experiments
    def create_experiment(self, name: str, tags: dict[str, str] | None = None) -> Experiment:
        # retried: a retry after a lost answer finds the name taken (AlreadyExistsError), which
        # get_or_create_experiment, the SDK's way in, reads as "it exists"
        return Experiment(**self._call("POST", "/experiments", {"name": name, "tags": tags or {}}, retry=True))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return Experiment(**self._call("GET", f"/experiments/{_q(experiment_id)}"))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        found = self._call("GET", f"/experiments/by-name/{_q(name)}")
        return None if found is None else Experiment(**found)

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        rows = self._call("GET", "/experiments", params={"include_deleted": include_deleted})
        return [Experiment(**e) for e in rows]

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._call("PATCH", f"/experiments/{_q(experiment_id)}", {"name": new_name})

    def delete_experiment(self, experiment_id: str) -> None:
        self._call("POST", f"/experiments/{_q(experiment_id)}/delete", retry=True)

    def restore_experiment(self, experiment_id: str) -> None:
        self._call("POST", f"/experiments/{_q(experiment_id)}/restore", retry=True)

    # runs
    def create_run(self, experiment_id: str, name: str | None, user: str, tags: dict[str, str],
                   parent_run_id: str | None, description: str, run_id: str | None = None) -> Run:
        # the id is picked here, so a retry after a lost answer gets the run back instead of making a second
        return _run(self._call("POST", "/runs", {
            "experiment_id": experiment_id, "name": name, "user": user, "tags": tags,
            "parent_run_id": parent_run_id, "description": description, "run_id": run_id or uuid.uuid4().hex},
            retry=True))

    def get_run(self, run_id: str) -> Run:
        return _run(self._call("GET", f"/runs/{_q(run_id)}"))

    def end_run(self, run_id: str, status: RunStatus) -> None:
        self._call("POST", f"/runs/{_q(run_id)}/end", {"status": RunStatus(status).value}, retry=True)

    def heartbeat(self, run_ids: list[str]) -> None:
        self._call("POST", "/heartbeat", {"run_ids": run_ids}, retry=False)  # the next beat is the retry

    def update_run(self, run_id: str, name: str | None = None, description: str | None = None) -> None:
        self._call("PATCH", f"/runs/{_q(run_id)}", {"name": name, "description": description})

    def move_run(self, run_id: str, experiment_id: str) -> None:
        self._call("PATCH", f"/runs/{_q(run_id)}", {"experiment_id": experiment_id})

    def delete_run(self, run_id: str) -> None:
        self._call("POST", f"/runs/{_q(run_id)}/delete", retry=True)

    def restore_run(self, run_id: str) -> None:
        self._call("POST", f"/runs/{_q(run_id)}/restore", retry=True)

    # data
    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = list(params.items())
        for i in range(0, len(items), 1000):
            self._call("POST", f"/runs/{_q(run_id)}/params", {"params": _jsonable(dict(items[i:i + 1000]))},
                       retry=True)  # the same values again change nothing

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self._call("POST", f"/runs/{_q(run_id)}/tags", {"tags": tags}, retry=True)

    def log_metrics(self, rows: list[MetricRow], batch_id: str | None = None) -> None:
        """Send points in chunks, each under a key of its own so that the server stores a retried chunk once."""
        batch_id = batch_id or uuid.uuid4().hex
        for i in range(0, len(rows), _METRIC_CHUNK):
            run_ids, keys, values, steps, stamps = zip(*rows[i:i + _METRIC_CHUNK], strict=True)
            if not all(math.isfinite(v) for v in values):
                values = tuple(float_out(v) for v in values)
            chunk_id = batch_id if len(rows) <= _METRIC_CHUNK else f"{batch_id}.{i // _METRIC_CHUNK}"
            self._call("POST", "/metrics/batch", {"run_ids": run_ids, "keys": keys, "values": values,
                                                  "steps": steps, "timestamps": stamps, "batch_id": chunk_id},
                       retry=True)

    def metric_history(self, run_id: str, key: str, max_points: int | None = None) -> list[Metric]:
        params = {} if max_points is None else {"max_points": max_points}
        data = self._call("GET", f"/runs/{_q(run_id)}/metrics/{_q(key)}/history", params=params)
        return [Metric(key=key, value=float_in(v), timestamp=t, step=s)
                for s, t, v in zip(data["steps"], data["timestamps"], data["values"], strict=True)]

    def log_input(self, run_id: str, dataset: Dataset, context: str) -> Dataset:
        body = {"dataset_id": dataset.dataset_id, "name": dataset.name, "digest": dataset.digest,
                "rows": dataset.rows, "schema": dataset.schema, "source": dataset.source,
                "created": dataset.created, "context": context}
        return Dataset(**self._call("POST", f"/runs/{_q(run_id)}/inputs", body, retry=True))

    def list_inputs(self, run_id: str) -> list[tuple[Dataset, str]]:
        return [(Dataset(**i["dataset"]), i["context"]) for i in self._call("GET", f"/runs/{_q(run_id)}/inputs")]

    def runs_with_dataset(self, digest: str) -> list[str]:
        return list(self._call("GET", f"/datasets/{_q(digest)}/runs"))

    # artifacts
    def put_artifact(self, run_id: str, path: str, source: Path) -> Artifact:
        check_artifact_path(path)
        url = f"/runs/{_q(run_id)}/artifacts/{_q(path, safe='/')}"
        size = Path(source).stat().st_size
        if size > self.chunk_bytes:
            return self._put_in_chunks(url, Path(source), size)
        with open(source, "rb") as stream:
            data = self._call("PUT", url, content=stream)
        return Artifact(**data)

    def _put_in_chunks(self, url: str, source: Path, size: int) -> Artifact:
        """Upload a large file chunk by chunk: a chunk whose connection broke is sent again (the server appends
        only one that arrived whole, at the offset it has reached), so a broken transfer goes on from the last
        chunk stored instead of from the start."""
        sha = _file_sha256(source)
        params: dict[str, Any] = {"upload": uuid.uuid4().hex, "size": size, "sha256": sha}
        offset, stalled = 0, 0
        with source.open("rb") as stream:
            while True:
                stream.seek(offset)
                chunk = stream.read(self.chunk_bytes)
                answer = self._call("PUT", url, content=chunk, retry=True, params={**params, "offset": offset})
                if "received" not in answer:
                    return Artifact(**answer)
                received = int(answer["received"])
                stalled = stalled + 1 if received <= offset else 0
                if stalled > _TRANSFER_ATTEMPTS:  # e.g. servers behind a balancer that do not share their staging
                    raise BackendError(f"Uploading '{source.name}' to {self.base_url} makes no progress: the server "
                                       f"keeps answering that it holds {received} of {size} bytes.")
                offset = received

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        if prefix:
            check_artifact_path(prefix.rstrip("/"), "prefix")
        return [Artifact(**a) for a in self._call("GET", f"/runs/{_q(run_id)}/artifacts", params={"prefix": prefix})]

    def get_artifact(self, run_id: str, path: str, dest: Path) -> Path:
        found = self.list_artifacts(run_id, check_artifact_path(path))
        if not found:
            from mloop.errors import NotFoundError

            raise NotFoundError(f"Run {run_id} has no artifact at '{path}'.", field="path")
        for art in found:
            check_artifact_path(art.path)  # a name from the server is joined to dest: it must stay inside
            target = dest / art.path if len(found) > 1 or art.path != path else dest
            self._download(f"/runs/{_q(run_id)}/artifacts/{_q(art.path, safe='/')}", art, target)
        return dest

    def _download(self, url: str, art: Artifact, target: Path) -> None:
        """Stream one artifact to ``target``, hashing as it arrives; the file appears only when its sha256 is the
        one recorded when it was logged."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        try:
            with tmp.open("wb") as out:
                failures = 0
                while not self._receive(url, out):  # a broken transfer resumes from the bytes already written
                    failures += 1
                    if failures > _TRANSFER_ATTEMPTS:
                        raise BackendError(f"Downloading '{art.path}' from {self.base_url} broke off {failures} "
                                           "times.")
                    time.sleep(min(0.1 * 2 ** failures, 2.0))
            actual = _file_sha256(tmp)
            if art.sha256 and actual != art.sha256:
                raise DataIntegrityError(path=art.path, expected=art.sha256, actual=actual)
        except BaseException:  # a refusal, a corrupt file or an interrupt: no half file is left behind
            tmp.unlink(missing_ok=True)
            raise
        shutil.move(tmp, target)

    def _receive(self, url: str, out: Any) -> bool:
        """Write the file's bytes from ``out``'s position on (an HTTP Range past the first attempt); False when
        the connection broke, so the caller asks for the rest."""
        done = out.tell()
        try:
            with self.http.stream("GET", url, headers={"Range": f"bytes={done}-"} if done else None) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise(response)
                if done and response.status_code != 206:  # the range was not honoured: start again
                    out.seek(0)
                    out.truncate()
                for chunk in response.iter_bytes():
                    out.write(chunk)
        except httpx.TransportError:
            out.flush()
            return False
        return True

    def delete_artifact(self, run_id: str, path: str) -> int:
        check_artifact_path(path)
        return int(self._call("DELETE", f"/runs/{_q(run_id)}/artifacts/{_q(path, safe='/')}")["deleted"])

    # search and retention
    def search_runs(self, experiment_ids: list[str], filter: str = "", order_by: list[str] | None = None,
                    limit: int | None = None, include_deleted: bool = False) -> pd.DataFrame:
        return frame_in(self._call("POST", "/runs/search", {
            "experiment_ids": experiment_ids, "filter": filter, "order_by": order_by, "limit": limit,
            "include_deleted": include_deleted}, retry=True))

    def purge(self, older_than_ms: int) -> dict[str, int]:
        return dict(self._call("POST", "/gc", {"older_than_ms": older_than_ms}, retry=True))

    def gc_report(self, older_than_ms: int, prediction_retention_days: float | None = None) -> dict[str, Any]:
        """``mloop gc`` on the server: the purge, and the prediction log's days past retention (None: the
        server's setting); the server's counts, with ``prediction_days``, ``prediction_files`` and
        ``prediction_retention_days``."""
        body = {"older_than_ms": older_than_ms, "predictions": True,
                "prediction_log_retention_days": prediction_retention_days}
        return dict(self._call("POST", "/gc", body, retry=True))


def _rewinder(content: Any) -> Callable[[], None] | None:
    """A function that puts a request body back at its start for a retry; None when it cannot be replayed."""
    if content is None or isinstance(content, bytes | str):
        return lambda: None
    try:
        start = content.tell()
    except (AttributeError, OSError):
        return None
    return lambda: content.seek(start)


def _q(value: str, safe: str = "") -> str:
    return quote(str(value), safe=safe)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)
        out[key] = value
    return out


def _run(data: dict[str, Any]) -> Run:
    data["status"] = RunStatus(data["status"])
    data["metrics"] = {k: float_in(v) for k, v in data["metrics"].items()}
    return Run(**data)


def _raise(response: httpx.Response) -> None:
    try:
        body = orjson.loads(response.content)
        cls = error_class(body.get("error_code", ""))
        message, field = body.get("message", response.text), body.get("field")
    except (orjson.JSONDecodeError, AttributeError):
        cls, message, field = MloopError, f"HTTP {response.status_code}: {response.text[:500]}", None
    if cls is DataIntegrityError:  # which file, and both digests, travel in the body too
        raise DataIntegrityError(message, field=field, path=body.get("path"), expected=body.get("expected"),
                                 actual=body.get("actual"))
    raise cls(message, field=field)



def _file_sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hash_stream(stream)[1]
