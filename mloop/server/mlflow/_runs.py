"""mloop's runs and experiments in MLflow's JSON shapes, and the few run-row writes MLflow needs beyond mloop's API.

An experiment keeps its mloop id (digits, as MLflow's are), so a run has the same id in both views; MLflow's
``"0"`` (the experiment a client uses when none was set) names mloop's ``Default`` experiment. A run's
``artifact_uri`` is ``mlflow-artifacts:/<experiment id>/<run id>/artifacts``, MLflow's proxied layout, so a client
with no access to the artifact store uploads through the server.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from mloop.server.mlflow._protocol import MlflowError
from mloop.tracking import _tables as t
from mloop.tracking._sql import SqlTrackingRepository
from mloop.tracking._values import check_tags, decode_param
from mloop.tracking._wire import float_out
from mloop.tracking.client import DEFAULT_EXPERIMENT
from mloop.tracking.entities import Experiment, RunStatus

DEFAULT_EXPERIMENT_ID = "0"
# MLflow's statuses; SCHEDULED has no mloop counterpart and is taken as RUNNING
STATUS_IN = {"RUNNING": RunStatus.RUNNING, "SCHEDULED": RunStatus.RUNNING, "FINISHED": RunStatus.FINISHED,
             "FAILED": RunStatus.FAILED, "KILLED": RunStatus.KILLED}
# the mlflow client sends no heartbeat: its runs stay RUNNING until it ends them, as on MLflow's server, so their
# heartbeat is set past any reaper's cutoff (the largest BIGINT both databases store)
NEVER_STALE = 2**63 - 1
_CHUNK = 500


def artifact_uri(experiment_id: str, run_id: str) -> str:
    """The URI the mlflow client resolves through the server's artifact proxy.

    >>> artifact_uri("3", "0123456789abcdef0123456789abcdef")
    'mlflow-artifacts:/3/0123456789abcdef0123456789abcdef/artifacts'
    """
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def resolve_experiment(repo: SqlTrackingRepository, experiment_id: str, create: bool = False) -> str:
    """mloop's id for MLflow's ``experiment_id``: ``"0"`` is the ``Default`` experiment (made when ``create``)."""
    if str(experiment_id) != DEFAULT_EXPERIMENT_ID:
        return str(experiment_id)
    found = repo.get_experiment_by_name(DEFAULT_EXPERIMENT)
    if found is None and create:
        try:
            return repo.create_experiment(DEFAULT_EXPERIMENT).experiment_id
        except AlreadyExistsError:  # created meanwhile by another request
            found = repo.get_experiment_by_name(DEFAULT_EXPERIMENT)
    if found is None:
        raise NotFoundError(f"No experiment with id '0' (the '{DEFAULT_EXPERIMENT}' experiment has not been "
                            "created yet).", field="experiment_id")
    return found.experiment_id


def experiment_json(exp: Experiment) -> dict[str, Any]:
    return {"experiment_id": exp.experiment_id, "name": exp.name,
            "artifact_location": f"mlflow-artifacts:/{exp.experiment_id}", "lifecycle_stage": exp.lifecycle_stage,
            "creation_time": exp.creation_time, "last_update_time": exp.last_update_time,
            "tags": [{"key": k, "value": v} for k, v in exp.tags.items()]}


def param_text(value: Any) -> str:
    """A param as MLflow's client would have logged it: ``str(value)``; lists and dicts as JSON.

    >>> param_text(0.1), param_text(True), param_text({"layers": [64, 32]})
    ('0.1', 'True', '{"layers": [64, 32]}')
    """
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def run_info(row: Any) -> dict[str, Any]:
    info = {"run_uuid": row.run_id, "run_id": row.run_id, "run_name": row.name,
            "experiment_id": str(row.experiment_id), "user_id": row.user, "status": str(row.status).upper(),
            "start_time": row.start_time, "artifact_uri": artifact_uri(str(row.experiment_id), row.run_id),
            "lifecycle_stage": row.lifecycle_stage}
    if row.end_time is not None:
        info["end_time"] = row.end_time
    return info


def runs_json(conn: Connection, rows: list[Any], with_inputs: bool = False) -> list[dict[str, Any]]:
    """MLflow's ``Run`` objects for the ``runs`` rows, in their order: info, data and (when asked) inputs."""
    ids = [r.run_id for r in rows]
    params, metrics, tags = defaultdict(list), defaultdict(list), defaultdict(list)
    for r in _children(conn, t.params, ids, t.params.c.key, t.params.c.value, t.params.c.vtype):
        params[r[0]].append({"key": r[1], "value": param_text(decode_param(r[2], r[3]))})
    lm = t.latest_metrics
    for r in _children(conn, lm, ids, lm.c.key, lm.c.value, lm.c.timestamp, lm.c.step):
        metrics[r[0]].append({"key": r[1], "value": float_out(math.nan if r[2] is None else r[2]),
                              "timestamp": r[3], "step": r[4]})
    for r in _children(conn, t.tags, ids, t.tags.c.key, t.tags.c.value):
        tags[r[0]].append({"key": r[1], "value": r[2]})
    inputs = _inputs(conn, ids) if with_inputs else {}
    out = []
    for row in rows:
        run_tags = tags[row.run_id]
        run_tags.append({"key": "mlflow.runName", "value": row.name})
        if row.parent_run_id:
            run_tags.append({"key": "mlflow.parentRunId", "value": row.parent_run_id})
        run: dict[str, Any] = {"info": run_info(row), "data": {
            "metrics": metrics[row.run_id], "params": params[row.run_id], "tags": run_tags}}
        if with_inputs:
            run["inputs"] = {"dataset_inputs": inputs.get(row.run_id, [])}
        out.append(run)
    return out


def run_row(conn: Connection, run_id: str) -> Any:
    row = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).first()
    if row is None:
        raise NotFoundError(f"Run '{run_id}' not found.", field="run_id")
    return row


def _children(conn: Connection, table: Any, ids: list[str], *cols: Any) -> Iterable[Any]:
    for i in range(0, len(ids), _CHUNK):
        yield from conn.execute(select(table.c.run_id, *cols).where(table.c.run_id.in_(ids[i:i + _CHUNK])))


def _inputs(conn: Connection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    from mloop.server.mlflow._runs_inputs import dataset_input_json

    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    query = (select(t.run_inputs.c.run_id, t.run_inputs.c.context, t.datasets)
             .join(t.datasets, t.datasets.c.dataset_id == t.run_inputs.c.dataset_id)
             .where(t.run_inputs.c.run_id.in_(ids)))
    for r in conn.execute(query):
        found[r.run_id].append(dataset_input_json(r))
    return found


# ---------------------------------------------------------------- writes mloop's API has no verb for
def keep_alive(repo: SqlTrackingRepository, run_id: str, start_time: int | None = None) -> None:
    """Exempt a run the mlflow client drives from mloop's heartbeat reaper (the client never beats), and give it
    the start time the client stated (a run imported from elsewhere keeps its own)."""
    values: dict[str, Any] = {"heartbeat": NEVER_STALE}
    if start_time is not None and start_time > 0:
        values["start_time"] = start_time
    with repo.db.write() as conn:
        conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(**values))


def set_status(repo: SqlTrackingRepository, run_id: str, status: str, end_time: int | None = None) -> None:
    """MLflow's status update: a terminal status ends the run (at ``end_time`` when the client states one);
    RUNNING (a resumed run) opens it again."""
    if status not in STATUS_IN:
        raise InvalidInputError(field="status", value=status, expected=f"one of {sorted(STATUS_IN)}")
    mloop_status = STATUS_IN[status]
    if mloop_status != RunStatus.RUNNING:
        repo.end_run(run_id, mloop_status)
        if end_time is not None and end_time > 0:
            with repo.db.write() as conn:
                conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(end_time=end_time))
        return
    with repo.db.write() as conn:
        done = conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(
            status=RunStatus.RUNNING, end_time=None, heartbeat=NEVER_STALE)).rowcount
    if not done:
        raise NotFoundError(f"Run '{run_id}' not found.", field="run_id")


def delete_run_tag(repo: SqlTrackingRepository, run_id: str, key: str) -> None:
    with repo.db.write() as conn:
        run_row(conn, run_id)
        if not conn.execute(delete(t.tags).where(t.tags.c.run_id == run_id, t.tags.c.key == key)).rowcount:
            raise MlflowError(f"No tag with name: {key} in run with id {run_id}", "RESOURCE_DOES_NOT_EXIST", 404,
                              "key")


def set_experiment_tag(repo: SqlTrackingRepository, experiment_id: str, key: str, value: str) -> None:
    value = check_tags({key: value})[key]
    exp = repo.get_experiment(experiment_id)
    table = t.experiment_tags
    with repo.db.write() as conn:
        conn.execute(delete(table).where(table.c.experiment_id == int(exp.experiment_id), table.c.key == key))
        conn.execute(insert(table).values(experiment_id=int(exp.experiment_id), key=key, value=value))


def delete_experiment_tag(repo: SqlTrackingRepository, experiment_id: str, key: str) -> None:
    exp = repo.get_experiment(experiment_id)
    table = t.experiment_tags
    with repo.db.write() as conn:
        conn.execute(delete(table).where(table.c.experiment_id == int(exp.experiment_id), table.c.key == key))
