"""MLflow 3's logged models kept in mloop's artifact store: one JSON record per model beside its files.

A logged model is what ``mlflow.<flavor>.log_model`` creates before it uploads the files: an id
(``m-<32 hex>``), the experiment and the run it came from, tags, params and a status (PENDING until the client
finalizes it READY). mloop's own registry needs none of this, so the record is a small JSON file at
``logged-models/<model_id>/model.json`` and the files under ``logged-models/<model_id>/artifacts/`` (the proxy's
``<experiment_id>/models/<model_id>/artifacts``); no table, so no migration. Registering one copies its files
into a registered version like any model folder.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from mloop._util.clock import now_ms
from mloop.errors import NotFoundError
from mloop.server.mlflow._artifacts_paths import LOGGED_MODEL_ID, logged_model_location
from mloop.server.mlflow._protocol import MlflowError
from mloop.store.blob import BlobStore

STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
MAX_TAGS = 1000
MAX_PARAMS = 10_000
_lock = threading.Lock()  # one read-modify-write of a record at a time in this server


def record_key(model_id: str) -> str:
    return f"logged-models/{model_id}/model.json"


def check_id(model_id: str) -> str:
    if not isinstance(model_id, str) or not LOGGED_MODEL_ID.fullmatch(model_id):
        raise MlflowError(f"model_id: '{str(model_id)[:80]}' is not a logged model id (m-<32 hex digits>).")
    return model_id


def create(blobs: BlobStore, experiment_id: str, name: str | None, source_run_id: str | None,
           model_type: str | None, tags: dict[str, str], params: dict[str, str], creator: str) -> dict[str, Any]:
    """A new PENDING logged model's record."""
    model_id = f"m-{uuid.uuid4().hex}"
    now = now_ms()
    record = {"model_id": model_id, "experiment_id": experiment_id, "name": name or f"model-{model_id[2:10]}",
              "creation_timestamp_ms": now, "last_updated_timestamp_ms": now,
              "artifact_uri": logged_model_location(experiment_id, model_id), "status": STATUSES[0],
              "creator": creator, "model_type": model_type or "", "source_run_id": source_run_id or "",
              "status_message": "", "tags": tags, "params": params, "deleted": False}
    blobs.put_bytes(record_key(model_id), json.dumps(record).encode())
    return record


def get(blobs: BlobStore, model_id: str, allow_deleted: bool = False) -> dict[str, Any]:
    """The record of ``model_id``; RESOURCE_DOES_NOT_EXIST when there is none (or it is deleted)."""
    try:
        record = json.loads(blobs.get_bytes(record_key(check_id(model_id))))
    except NotFoundError:
        record = None
    if record is None or (record.get("deleted") and not allow_deleted):
        raise MlflowError(f"Logged model with ID '{model_id}' not found.", code="RESOURCE_DOES_NOT_EXIST",
                          status=404)
    return dict(record)


def change(blobs: BlobStore, model_id: str, **changes: Any) -> dict[str, Any]:
    """Apply ``changes`` (``tags``/``params`` merge, ``drop_tag`` removes one, others replace) and save."""
    with _lock:
        record = get(blobs, model_id)
        for key, value in changes.items():
            if key in ("tags", "params"):
                record[key] = {**record[key], **value}
            elif key == "drop_tag":
                record["tags"].pop(value, None)
            else:
                record[key] = value
        if len(record["tags"]) > MAX_TAGS or len(record["params"]) > MAX_PARAMS:
            raise MlflowError(f"A logged model holds at most {MAX_TAGS} tags and {MAX_PARAMS} params.")
        record["last_updated_timestamp_ms"] = now_ms()
        blobs.put_bytes(record_key(model_id), json.dumps(record).encode())
    return record


def every(blobs: BlobStore) -> list[dict[str, Any]]:
    """Every logged model that is not deleted, newest first."""
    records = []
    for key in blobs.list("logged-models"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == "model.json" and LOGGED_MODEL_ID.fullmatch(parts[1]):
            record = json.loads(blobs.get_bytes(key))
            if not record.get("deleted"):
                records.append(record)
    return sorted(records, key=lambda r: (-r["creation_timestamp_ms"], r["model_id"]))


def to_mlflow(record: dict[str, Any], registrations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The record as MLflow's ``LoggedModel`` message."""
    info = {key: record[key] for key in ("model_id", "experiment_id", "name", "creation_timestamp_ms",
                                         "last_updated_timestamp_ms", "artifact_uri", "status", "model_type",
                                         "source_run_id", "status_message") if record.get(key) not in (None, "")}
    info["tags"] = [{"key": k, "value": v} for k, v in sorted(record["tags"].items())]
    info["registrations"] = registrations or []
    return {"info": info, "data": {"params": [{"key": k, "value": v} for k, v in sorted(record["params"].items())],
                                   "metrics": []}}
