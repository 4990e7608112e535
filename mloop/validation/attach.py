"""Schemas and profiles attached where they are needed: to a dataset logged in a run, and to a model version.

A run stores them as artifacts ``datasets/<name>/schema.yaml`` and ``datasets/<name>/profile.json``; a model
version stores its training set's under its run (``training/...``) or, for versions registered from a folder,
next to its files, and records where in the version tags ``mloop.schema`` and ``mloop.profile``. Serving reads
them back with ``model_schema`` to validate requests, and monitoring with ``model_profile`` to measure drift.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mloop._util.names import check_name
from mloop.errors import InvalidInputError, NotFoundError
from mloop.validation.profile import Profile, profile
from mloop.validation.schema import Schema, infer_schema, load_schema

if TYPE_CHECKING:
    from mloop.registry.client import RegistryClient
    from mloop.registry.entities import ModelVersion
    from mloop.tracking.run import RunContext
    from mloop.validation._http import HttpQuality

__all__ = ["PREDICTION", "attach_to_model_version", "load_run_profile", "load_run_schema", "log_dataset", "log_profile",
           "log_schema", "model_profile", "model_schema"]

SCHEMA_TAG, PROFILE_TAG = "mloop.schema", "mloop.profile"


def _schema_of(schema_or_data: Any) -> Schema:
    if isinstance(schema_or_data, Schema | dict):
        return load_schema(schema_or_data)
    return infer_schema(schema_or_data)


def log_schema(run: RunContext, schema_or_data: Any, dataset: str = "train") -> Schema:
    """Store a schema (inferred when given data) as ``datasets/<dataset>/schema.yaml`` of ``run``."""
    dataset = check_name(dataset, "dataset")
    schema = _schema_of(schema_or_data)
    run.log_text(schema.to_yaml(), f"datasets/{dataset}/schema.yaml")
    run.set_tag(f"{SCHEMA_TAG}.{dataset}", f"datasets/{dataset}/schema.yaml")
    return schema


def log_profile(run: RunContext, profile_or_data: Any, dataset: str = "train") -> Profile:
    """Store a profile (computed when given data) as ``datasets/<dataset>/profile.json`` of ``run``."""
    dataset = check_name(dataset, "dataset")
    prof = profile_or_data if isinstance(profile_or_data, Profile) else profile(profile_or_data)
    run.log_text(prof.to_json(), f"datasets/{dataset}/profile.json")
    run.set_tag(f"{PROFILE_TAG}.{dataset}", f"datasets/{dataset}/profile.json")
    return prof


def log_dataset(run: RunContext, data: Any, name: str = "train", context: str = "train") -> tuple[Schema, Profile]:
    """``run.log_input`` plus the dataset's inferred schema and profile, stored beside it."""
    run.log_input(data, name=name, context=context)
    return log_schema(run, data, name), log_profile(run, data, name)


def _read_run_text(client: Any, run_id: str, path: str) -> str:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, Path(tmp) / Path(path).name)
        except (NotFoundError, FileNotFoundError):
            raise NotFoundError(f"Run {run_id} has no artifact '{path}'.", field="dataset") from None
        return Path(local).read_text()


def load_run_schema(client: Any, run_id: str, dataset: str = "train") -> Schema:
    """The schema logged with ``log_schema`` for ``dataset`` in run ``run_id`` (``client``: a TrackingClient)."""
    import yaml

    return Schema.from_dict(yaml.safe_load(_read_run_text(client, run_id, f"datasets/{dataset}/schema.yaml")))


def load_run_profile(client: Any, run_id: str, dataset: str = "train") -> Profile:
    return Profile.from_dict(json.loads(_read_run_text(client, run_id, f"datasets/{dataset}/profile.json")))


# ---------------------------------------------------------------------- model versions
def _registry(registry: RegistryClient | None) -> RegistryClient:
    if registry is not None:
        return registry
    from mloop.config import Settings
    from mloop.registry import registry_for

    return registry_for(Settings.load())


def _key(version: ModelVersion, filename: str) -> str:
    if version.run_id:
        return f"runs/{version.run_id}/artifacts/training/{filename}"
    return f"{version.storage.rstrip('/')}-training/{filename}"


def attach_to_model_version(name: str, version: int, *, schema: Schema | dict[str, Any] | None = None,
                            profile: Profile | None = None, data: Any = None, predictions: Any = None,
                            registry: RegistryClient | None = None) -> ModelVersion:
    """Store the training ``schema`` and ``profile`` of a model version (both computed from ``data`` if given).

    They go under the version's run (``training/schema.json``, ``training/profile.json``); the version's tags
    ``mloop.schema`` / ``mloop.profile`` say where. Nothing of the registry's own layout changes.
    ``predictions`` (the model's outputs on ``data``, one per row) join the profile as the column
    ``(prediction)``, which is what a monitor compares the served predictions with (prediction drift); the
    schema stays that of the inputs.
    """
    if predictions is not None:
        if data is None:
            raise InvalidInputError(field="predictions", value="(given)", expected="data beside the predictions: "
                                    "the rows they were predicted for")
        data = _with_predictions(data, predictions)
    if data is not None:
        inputs = data.drop(columns=[PREDICTION]) if predictions is not None else data
        schema = schema if schema is not None else infer_schema(inputs)
        profile = profile if profile is not None else _profile(data)
    if schema is None and profile is None:
        raise InvalidInputError(field="schema", value=None, expected="a schema, a profile, or data to infer both")
    remote = _remote(registry)
    if remote is not None:
        return remote.attach(name, version, None if schema is None else load_schema(schema).to_dict(),
                             None if profile is None else profile.to_dict())
    registry = _registry(registry)
    mv = registry.get_version(name, version)
    tags: dict[str, str] = {}
    if schema is not None:
        key = _key(mv, "schema.json")
        registry.blobs.put_bytes(key, load_schema(schema).to_json().encode())
        tags[SCHEMA_TAG] = key
    if profile is not None:
        key = _key(mv, "profile.json")
        registry.blobs.put_bytes(key, profile.to_json().encode())
        tags[PROFILE_TAG] = key
    return registry.update_version(name, mv.version, tags=tags)


PREDICTION = "(prediction)"  # the model's output as a column of a profile: what a monitor compares


def _with_predictions(data: Any, predictions: Any) -> Any:
    import numpy as np
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    values = np.asarray(predictions)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or len(values) != len(frame):
        raise InvalidInputError(field="predictions", value=f"shape {values.shape}",
                                expected=f"one prediction per row of data ({len(frame)} rows)")
    return frame.assign(**{PREDICTION: values})


def _profile(data: Any) -> Profile:
    return profile(data)


def _remote(registry: RegistryClient | None) -> HttpQuality | None:
    """The server's quality API when the registry given is a server's, or none is given and MLOOP_TRACKING_URI is
    set; else None (direct)."""
    from mloop.config import Settings

    if registry is not None and not registry.settings.remote:
        return None
    settings = registry.settings if registry is not None else Settings.load()
    if not settings.remote:
        return None
    from mloop.validation._http import HttpQuality

    return HttpQuality(settings)


def stored_blob(name: str, version: int, tag: str, registry: RegistryClient | None = None) -> bytes:
    """The stored JSON bytes of a version's training schema (``SCHEMA_TAG``) or profile (``PROFILE_TAG``)."""
    remote = _remote(registry)
    if remote is not None:
        return remote.stored(name, version, tag.split(".")[-1])
    registry = _registry(registry)
    mv = registry.get_version(name, version)
    key = mv.tags.get(tag)
    if not key:
        raise NotFoundError(f"Model {name} v{mv.version} has no training {tag.split('.')[-1]}; attach one with "
                            f"attach_to_model_version('{name}', {mv.version}, data=train).", field=tag)
    return registry.blobs.get_bytes(key)


def model_schema(name: str, version: int, registry: RegistryClient | None = None) -> Schema:
    """The training schema stored for a model version (what serving validates requests against)."""
    return Schema.from_dict(json.loads(stored_blob(name, version, SCHEMA_TAG, registry)))


def model_profile(name: str, version: int, registry: RegistryClient | None = None) -> Profile:
    """The training-set profile stored for a model version (the reference for drift in production)."""
    return Profile.from_dict(json.loads(stored_blob(name, version, PROFILE_TAG, registry)))
