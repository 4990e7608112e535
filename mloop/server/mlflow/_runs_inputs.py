"""MLflow's dataset inputs (``runs/log-inputs``) as mloop datasets, and back.

MLflow describes a dataset by name, digest, source type, source, schema and profile (JSON texts); mloop keeps
name, digest, source and a ``schema`` mapping, so MLflow's other texts ride in that mapping under ``mlflow.*`` keys
and come back unchanged. The same dataset logged twice is one mloop dataset: its id is a hash of what names it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, Field

from mloop._util.clock import now_ms
from mloop.server.api._schema import Text
from mloop.tracking.entities import Dataset

CONTEXT_TAG = "mlflow.data.context"
_EXTRA = ("source_type", "schema", "profile")  # MLflow's fields kept under mlflow.<field> in mloop's schema


class DatasetIn(BaseModel):
    # bounds: MLflow's own, or mloop's where they are tighter (name 256, digest 64, source 20,000 characters)
    name: Text(256) = Field(min_length=1, max_length=256)
    digest: Text(64) = Field(min_length=1, max_length=64)
    source_type: Text(64) = Field(default="", max_length=64)
    source: Text(20_000) = Field(default="", max_length=20_000)
    schema_: Text(1_048_575) = Field(default="", max_length=1_048_575, alias="schema")
    profile: Text(16_384) = Field(default="", max_length=16_384)


class InputTag(BaseModel):
    key: Text(255) = Field(max_length=255)
    value: Text(500) = Field(max_length=500)


class DatasetInputIn(BaseModel):
    tags: list[InputTag] = Field(default=[], max_length=100)
    dataset: DatasetIn


def to_dataset(given: DatasetInputIn) -> tuple[Dataset, str]:
    """The mloop dataset and the context (``mlflow.data.context``, '' when none) of one MLflow dataset input."""
    d = given.dataset
    texts = {"source_type": d.source_type, "schema": d.schema_, "profile": d.profile}
    identity = json.dumps([d.name, d.digest, d.source_type, d.source]).encode()
    dataset = Dataset(dataset_id=hashlib.sha256(identity).hexdigest()[:32], name=d.name, digest=d.digest,
                      rows=_rows(d.profile), schema={f"mlflow.{k}": v for k, v in texts.items() if v},
                      source=d.source, created=now_ms())
    context = next((tag.value for tag in given.tags if tag.key == CONTEXT_TAG), "")
    return dataset, context[:64]


def dataset_input_json(row: Any) -> dict[str, Any]:
    """MLflow's ``DatasetInput`` for a joined (run_inputs, datasets) row."""
    schema = _schema(row.schema)
    dataset = {"name": row.name, "digest": row.digest, "source": row.source,
               **{k: schema.get(f"mlflow.{k}", "") for k in _EXTRA}}
    if not dataset["source_type"]:
        dataset["source_type"] = "mloop"
    tags = [{"key": CONTEXT_TAG, "value": row.context}] if row.context else []
    return {"tags": tags, "dataset": dataset}


def _schema(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _rows(profile: str) -> int | None:
    """The row count MLflow's profile states (``{"num_rows": 569, ...}``), when it states one."""
    found = _schema(profile).get("num_rows") if profile else None
    return found if isinstance(found, int) and not isinstance(found, bool) and 0 <= found < 2**62 else None
