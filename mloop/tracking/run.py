"""The run a training script is inside: ``with client.start_run(...) as run: run.log_metric(...)``."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from numbers import Real
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mloop._util.clock import to_ms
from mloop._util.names import check_artifact_path, check_key
from mloop.errors import ConflictError, InvalidInputError
from mloop.tracking._values import check_json_depth, check_tags, decode_param, encode_param
from mloop.tracking.entities import Artifact, Dataset, Run, RunStatus
from mloop.tracking.logger import RunData

if TYPE_CHECKING:
    from mloop.tracking.client import TrackingClient

_local = threading.local()
# Runs started and not yet ended, so that interpreter exit can finish them.
open_runs: set[RunContext] = set()


def run_stack() -> list[RunContext]:
    """This thread's active runs, innermost last."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class RunContext:
    """A live run: logging calls are buffered and return at once; leaving the block makes them durable."""

    def __init__(self, client: TrackingClient, run: Run) -> None:
        self.client = client
        self.run_id = run.run_id
        self.experiment_id = run.experiment_id
        self.name = run.name
        self._writer = client.writer
        self._append = client.writer.append
        self._keys: set[str] = set()
        self._params: dict[str, tuple[str, str, float | None]] = {}  # every param logged here, encoded
        self._ended = False
        self._status = run.status
        self._sampler: Any = None
        self._writer.active_runs.add(self.run_id)
        self._writer.start()

    def log_system_metrics(self, interval: float = 10.0) -> None:
        """Sample CPU, memory (and GPU when present) as ``system/*`` metrics every ``interval`` seconds."""
        if not isinstance(interval, int | float) or interval <= 0:
            raise InvalidInputError(field="interval", value=interval, expected="a positive number of seconds")
        if self._sampler is None:
            from mloop.tracking.sysmetrics import SystemMetricsSampler

            self._sampler = SystemMetricsSampler(self, float(interval))

    def __repr__(self) -> str:
        return f"<RunContext {self.name} {self.run_id}>"

    # ---------------------------------------------------------------- metrics
    def log_metric(self, key: str, value: float, step: int = 0, timestamp: Any = None) -> None:
        """Queue one metric point; returns at once (durable after ``flush()`` or the end of the run)."""
        if key not in self._keys:
            self._new_key(key)
        if value.__class__ is not float:
            value = _as_float(key, value)
        if step.__class__ is not int:
            step = _as_step(step)
        ts = time.time_ns() // 1_000_000 if timestamp is None else _as_ms(timestamp)
        self._append((self.run_id, key, value, step, ts))

    def log_metrics(self, metrics: dict[str, float], step: int = 0, timestamp: Any = None) -> None:
        """Queue several metrics at one step."""
        ts = time.time_ns() // 1_000_000 if timestamp is None else _as_ms(timestamp)
        for key, value in _as_mapping("metrics", metrics).items():
            self.log_metric(key, value, step, ts)

    def _new_key(self, key: str) -> None:
        check_key(key, "metric key")
        self._keys.add(key)

    def metric_history(self, key: str, max_points: int | None = None) -> list[Any]:
        self.flush()
        return self.client.metric_history(self.run_id, key, max_points)

    # ---------------------------------------------------------------- params, tags, description
    def log_param(self, key: str, value: Any) -> Any:
        """Queue one param (an input of the run); returns ``value``. See ``log_params``."""
        self.log_params({key: value})
        return value

    def log_params(self, params: dict[str, Any]) -> None:
        """Queue inputs; they return at once and are durable after ``flush()`` or the end of the run.

        A param is set once: logging a key again with another value raises ConflictError here, at the
        call, when the first value was logged through this run object; when the stored value came from
        elsewhere (another process), the store refuses the new one and this run's next ``flush()`` (or
        its end) raises the ConflictError, its other params being stored.
        """
        self._refuse_if_ended("log params")
        params = _as_mapping("params", params)
        encoded = {}
        for key, value in params.items():
            check_key(key, "param key")
            # checked here too: a remote server must not be sent what it would refuse
            encoded[key] = enc = encode_param(key, value)
            known = self._params.get(key)
            if known is not None and known[:2] != enc[:2]:
                raise ConflictError(
                    f"Param '{key}' of run {self.run_id} is already {decode_param(*known[:2])!r}; it cannot change "
                    f"to {value!r}. Params are inputs: start a new run to try another value.", field=f"params.{key}")
        if encoded:
            self._params.update(encoded)
            self._append(RunData("params", self.run_id, dict(params)))

    def set_tag(self, key: str, value: Any) -> None:
        """Queue one tag (a later value replaces an earlier one). See ``set_tags``."""
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Queue tags, durable after ``flush()`` or the end of the run; on an ended run they are written at once
        (tags annotate a run, before or after it ends)."""
        tags = _as_mapping("tags", tags)
        for key in tags:
            check_key(key, "tag key")
        tags = check_tags(tags)
        if self._ended:
            self.client.repo.set_tags(self.run_id, tags)
        elif tags:
            self._append(RunData("tags", self.run_id, tags))

    def _refuse_if_ended(self, what: str) -> None:
        if self._ended:
            raise ConflictError(f"Run {self.run_id} has ended (status {self._status}); cannot {what} to it. "
                                "Start a new run to record more.", field="run_id")

    def _refuse_metric(self, row: Any) -> None:
        self._refuse_if_ended("log metrics")

    def set_description(self, description: str) -> None:
        self.client.repo.update_run(self.run_id, description=description)

    # ---------------------------------------------------------------- artifacts and datasets
    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> Artifact | list[Artifact]:
        """Store a file (or every file of a folder) under the run, at ``artifact_path`` or its own name."""
        source = Path(local_path)
        if not source.exists():
            raise InvalidInputError(field="local_path", value=str(local_path), expected="an existing file or folder")
        if source.is_dir():
            prefix = check_artifact_path(artifact_path) + "/" if artifact_path else ""
            return [self.client.repo.put_artifact(self.run_id, prefix + p.relative_to(source).as_posix(), p)
                    for p in sorted(source.rglob("*")) if p.is_file()]
        target = check_artifact_path(artifact_path or source.name, "artifact_path")
        return self.client.repo.put_artifact(self.run_id, target, source)

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> list[Artifact]:
        if not Path(local_dir).is_dir():
            raise InvalidInputError(field="local_dir", value=str(local_dir), expected="an existing folder")
        found = self.log_artifact(local_dir, artifact_path)
        return found if isinstance(found, list) else [found]

    def _log_bytes(self, data: bytes, artifact_path: str) -> Artifact:
        check_artifact_path(artifact_path, "artifact_path")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(artifact_path).name
            path.write_bytes(data)
            return self.client.repo.put_artifact(self.run_id, artifact_path, path)

    def log_text(self, text: str, artifact_path: str) -> Artifact:
        """Store a string as a text file artifact."""
        return self._log_bytes(str(text).encode(), artifact_path)

    def log_dict(self, data: dict[str, Any], artifact_path: str) -> Artifact:
        """Store a dict as JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
        check_json_depth("data", data)
        if artifact_path.endswith((".yaml", ".yml")):
            import yaml

            return self.log_text(yaml.safe_dump(data, sort_keys=False), artifact_path)
        return self.log_text(json.dumps(data, indent=2, default=str), artifact_path)

    def log_figure(self, figure: Any, artifact_path: str) -> Artifact:
        """Store a matplotlib figure (png, svg, pdf) or a Plotly figure (html, json, or png when kaleido is present)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(check_artifact_path(artifact_path, "artifact_path")).name
            if hasattr(figure, "savefig"):
                figure.savefig(path)
            elif hasattr(figure, "write_html"):
                if path.suffix == ".html":
                    # Plotly.js inlined from the installed package: the artifact opens without internet
                    figure.write_html(str(path), include_plotlyjs=True)
                elif path.suffix == ".json":
                    path.write_text(figure.to_json())
                else:
                    figure.write_image(str(path))
            else:
                raise InvalidInputError(field="figure", value=type(figure).__name__,
                                        expected="a matplotlib Figure or a Plotly Figure")
            return self.client.repo.put_artifact(self.run_id, artifact_path, path)

    def list_artifacts(self, prefix: str = "") -> list[Artifact]:
        return self.client.repo.list_artifacts(self.run_id, prefix)

    def download_artifacts(self, path: str, dest: str | Path) -> Path:
        return self.client.download_artifacts(self.run_id, path, dest)

    def log_input(self, data: Any, name: str | None = None, context: str = "train",
                  source: str | None = None) -> Dataset:
        """Record a dataset this run used: digest, rows, schema and source; the same data is one dataset."""
        from mloop.tracking.datasets import describe_dataset

        check_key(context, "context")
        return self.client.repo.log_input(self.run_id, describe_dataset(data, name, source), context)

    # ---------------------------------------------------------------- lifecycle
    def flush(self) -> None:
        """Make every point logged so far durable."""
        self._writer.flush(run_id=self.run_id)

    def start_run(self, name: str | None = None, **kwargs: Any) -> RunContext:
        """A nested run whose parent is this run."""
        return self.client.start_run(experiment_id=self.experiment_id, name=name, parent=self.run_id,
                                     run_class=type(self), **kwargs)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush and close the run with ``status``; ending twice does nothing."""
        if self._ended:
            return
        if not isinstance(status, RunStatus) and status not in set(RunStatus):
            raise InvalidInputError(field="status", value=status, expected=f"one of {[s.value for s in RunStatus]}")
        if self._sampler is not None:
            self._sampler.stop()
        self._ended = True
        self._status = RunStatus(status)
        self.client.last_run_id = self.run_id  # the run last active, as mloop.last_active_run reads it
        self._append = self._refuse_metric
        try:
            self.flush()
        finally:
            self._writer.active_runs.discard(self.run_id)
            open_runs.discard(self)
            stack = run_stack()
            if self in stack:  # first: a run that cannot be ended (it is gone) must not parent the next one
                stack.remove(self)
            self.client.repo.end_run(self.run_id, RunStatus(status))

    @property
    def info(self) -> Run:
        """The run as stored now (flushes first)."""
        self.flush()
        return self.client.repo.get_run(self.run_id)

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt | SystemExit):
            status = RunStatus.KILLED if exc_type is KeyboardInterrupt else RunStatus.FINISHED
        else:
            status = RunStatus.FAILED
        self.end(status)


def _as_float(key: str, value: Any) -> float:
    if isinstance(value, Real) or (hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise InvalidInputError(field=f"metrics.{key}", value=value,
                            expected="a number (int or float; NaN and inf allowed)")


def _as_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int):
        try:
            import numpy as np

            if isinstance(step, np.integer):
                return int(step)
        except ImportError:  # pragma: no cover
            pass
        raise InvalidInputError(field="step", value=step, expected="a whole number")
    return int(step)


def _as_ms(timestamp: Any) -> int:
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        return timestamp
    from datetime import datetime

    if isinstance(timestamp, datetime):
        return to_ms(timestamp)
    raise InvalidInputError(field="timestamp", value=timestamp,
                            expected="epoch milliseconds (int) or a timezone-aware datetime")


def _as_mapping(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInputError(field=field, value=value, expected="a dict of key: value")
    return value
