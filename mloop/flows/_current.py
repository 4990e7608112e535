"""``current``: where a running task is (flow, run, step, task) and its link to tracking and the registry.

Inside a step: ``current.log_model(model, "eta")`` registers a model version whose run is this task's
tracking run, nested under the flow run; ``current.log_metrics({...})`` records metrics on it.
``mloop.start_run()`` inside a step opens a child of the task's run, in the flow's experiment. A training set
built in a step outside such a run is recorded as an input of the task's run.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from mloop.config import Settings
from mloop.errors import MloopError

# what Settings.export_stores sets or drops while a task runs
_STORE_ENV = ("MLOOP_HOME", "MLOOP_DB_URL", "MLOOP_ARTIFACT_ROOT", "MLOOP_TRACKING_URI")


class Current:
    """The task this process runs (empty outside a flow)."""

    def __init__(self) -> None:
        self.flow_name: str | None = None
        self.run_id: str | None = None
        self.task_id: str | None = None
        self.step: str | None = None
        self.index: int | None = None
        self.attempt: int = 0
        self._settings: dict[str, Any] = {}
        self._saved_env: dict[str, str | None] = {}

    def _enter(self, spec: dict[str, Any]) -> None:
        self._saved_env = {name: os.environ.get(name) for name in _STORE_ENV}
        self.flow_name = spec["flow_class"]
        self.run_id = spec.get("run_id")
        self.task_id = spec.get("task_id")
        self.step = spec["step"]
        self.index = spec.get("foreach_index")
        self.attempt = int(spec.get("attempt", 0))
        self._settings = {k: spec[k] for k in ("home", "db_url", "tracking_uri", "direct_artifacts") if spec.get(k)}
        if not spec.get("tracking_uri") or spec.get("direct_artifacts"):  # else it is the server's URL
            self._settings["artifact_root"] = spec["artifact_root"]
        # mloop.start_run() and friends inside the step write where the flow does, whatever started the worker.
        self.settings.export_stores()
        sdk = sys.modules.get("mloop._sdk")
        if sdk is not None:
            sdk._client = None

    def _exit(self) -> None:
        """Forget the task and put the environment back: a process that runs a task in-process (a test, a
        notebook) must not keep writing to that flow's stores, or keep recording inputs on its task's run."""
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.__init__()  # type: ignore[misc]
        sdk = sys.modules.get("mloop._sdk")
        if sdk is not None and sdk._client is not None:
            client, sdk._client = sdk._client, None  # the next call opens a client on the restored settings
            try:
                client.writer.flush()  # what the step logged through it is stored before it goes
            except MloopError as exc:
                sys.stderr.write(f"mloop: logging from the step was refused: {exc}\n")

    def tracking_parent(self, settings: Settings) -> tuple[str, str] | None:
        """(this task's tracking run id, the flow's name) when a run started with ``settings`` belongs under it."""
        mine = self.settings if self.task_id is not None else None
        if mine is None or settings.tracking_uri != mine.tracking_uri or (
                not settings.remote and settings.db_url != mine.db_url):
            return None
        self._repo()  # the orchestrator records the task's run behind; a child needs it to exist
        return str(self.task_id), str(self.flow_name)

    def task_run(self) -> tuple[Any, str] | None:
        """(tracking repository, this task's run id) inside a step, None elsewhere: where a step's inputs go."""
        if self.task_id is None:
            return None
        return self._repo(), str(self.task_id)

    @property
    def settings(self) -> Settings:
        if self.task_id is None:
            raise MloopError("current is only available inside a running flow step.")
        return Settings.load(**{"tracking_uri": "", **self._settings})

    def _repo(self) -> Any:
        """The tracking repository, once this task's run is recorded (the orchestrator writes it behind)."""
        import time

        from mloop.tracking.client import open_repository

        repo = open_repository(self.settings)
        deadline = time.monotonic() + 60
        while True:
            try:
                repo.get_run(str(self.task_id))
                return repo
            except MloopError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """Record metrics on this task's tracking run (written at once)."""
        from mloop._util.clock import now_ms

        now = now_ms()
        self._repo().log_metrics([(str(self.task_id), k, float(v), step, now) for k, v in metrics.items()])

    def log_model(self, model: Any, name: str | None = None, **kwargs: Any) -> Any:
        """Save (and with ``name`` register) ``model`` under this task's run; see mloop.registry.log_model."""
        from mloop.registry import log_model_to_run

        self._repo()
        return log_model_to_run(self.settings, str(self.task_id), model, name, **kwargs)


current = Current()
