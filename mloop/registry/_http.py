"""The model registry through ``mloop server``: RegistryClient's surface over ``/api/registry``.

``open_registry`` (in ``mloop.registry._log``) picks this transport when ``MLOOP_TRACKING_URI`` is set, so the
client needs no database and no object-store credentials: metadata comes from the REST API, model files stream
through the server (checked against the manifest's sha256s before they are used), and the server records the
authenticated identity as the actor. Errors come back as the same ``mloop.errors`` types with the server's message.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.registry import _models
from mloop.registry._http_files import download_run_model, download_version, upload_folder
from mloop.registry._http_topics import HttpEnvironments, HttpRules, HttpWebhooks
from mloop.registry.entities import AuditEntry, ModelVersion, RegisteredModel
from mloop.registry.uri import ModelRef, parse_uri
from mloop.tracking._http import HttpTrackingRepository

__all__ = ["HttpRegistryClient"]


class HttpRegistryClient:
    """The registry of the mloop server at ``settings.tracking_uri`` (same methods as ``RegistryClient``).

    >>> from mloop.config import Settings
    >>> HttpRegistryClient(Settings.load(tracking_uri="http://127.0.0.1:5000")).base_url
    'http://127.0.0.1:5000'
    """

    separate_duties = False  # decided by the server, which knows who is calling

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        if not settings.remote:
            raise InvalidInputError(field="tracking_uri", value=settings.tracking_uri,
                                    expected="the http(s):// URL of an mloop server")
        self.settings = settings
        self.base_url = settings.tracking_uri.rstrip("/")
        # runs and the registry share one keep-alive connection pool, the token and the retry rules
        self.runs = HttpTrackingRepository(self.base_url, transport=transport)
        self.actor = settings.user  # what this process calls itself; the server records who authenticated
        self.environments = HttpEnvironments(self)
        self.webhooks = HttpWebhooks(self)
        self.rules = HttpRules(self)
        self._located: dict[str, tuple[str, int]] = {}  # storage key -> (name, version), filled by locate

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> Any:
        """One request to ``/api/registry<path>``; an error answer raises its mloop.errors type."""
        return self.runs.call(method, "/registry" + path, json, **kwargs)

    def close(self) -> None:
        """Nothing to release between calls (the connection pool closes with the process)."""

    # ---------------------------------------------------------------- models
    def create_model(self, name: str, description: str = "", tags: dict[str, Any] | None = None,
                     owner: str | None = None) -> RegisteredModel:
        """Create a registered model; its owner is the identity the server authenticated (``owner`` is ignored)."""
        _models.check_text(description, "description")
        return _model(self.call("POST", "/models", {"name": name, "description": description, "tags": tags or {}}))

    def get_model(self, name: str) -> RegisteredModel:
        return _model(self.call("GET", f"/models/{_q(name)}"))

    def list_models(self) -> list[RegisteredModel]:
        return [_model(m) for m in self.call("GET", "/models")]

    def update_model(self, name: str, description: str | None = None, tags: dict[str, Any] | None = None,
                     ) -> RegisteredModel:
        _models.check_text(description, "description")
        return _model(self.call("PATCH", f"/models/{_q(name)}", {"description": description, "tags": tags}))

    def delete_model(self, name: str, force: bool = False) -> None:
        self.call("DELETE", f"/models/{_q(name)}", params={"force": force})

    # ---------------------------------------------------------------- versions
    def register(self, name: str, source: str | Path, *, description: str = "", tags: dict[str, Any] | None = None,
                 create: bool = True, origin: str | None = None, run_id: str | None = None) -> ModelVersion:
        """Register a new version of ``name`` from ``runs:/<run_id>/<path>`` (a model logged to this server) or a
        local model folder (checked against its manifest here, uploaded, and checked again by the server)."""
        ref = _models.check_registration(source, description, origin, tags)
        body = {"description": description, "tags": tags or {}, "create": create}
        if ref.kind == "path":
            upload_id = upload_folder(self, Path(str(ref.path)))
            body.update(origin=origin or str(ref.path), run_id=run_id)
            return _version(self.call("POST", f"/models/{_q(name)}/uploads/{upload_id}", body, retry=False))
        if origin is not None or run_id is not None:
            raise InvalidInputError(field="origin", value=origin or run_id,
                                    expected="origin and run_id only with a local folder (a runs:/ URI names both)")
        return _version(self.call("POST", f"/models/{_q(name)}/versions", {"source": str(source), **body}))

    def get_version(self, name: str, version: int) -> ModelVersion:
        return _version(self.call("GET", _version_path(name, version)))

    def list_versions(self, name: str | None = None) -> list[ModelVersion]:
        """Versions of one model (or of all), oldest first."""
        path = "/versions" if name is None else f"/models/{_q(name)}/versions"
        return [_version(v) for v in self.call("GET", path)]

    def update_version(self, name: str, version: int, description: str | None = None,
                       tags: dict[str, Any] | None = None) -> ModelVersion:
        _models.check_text(description, "description")
        return _version(self.call("PATCH", _version_path(name, version), {"description": description, "tags": tags}))

    def delete_tag(self, name: str, key: str, version: int | None = None) -> None:
        """Remove the tag ``key`` from a model, or from one of its versions (no error when it is not set)."""
        owner = f"/models/{_q(name)}" if version is None else _version_path(name, version)
        self.call("DELETE", f"{owner}/tags/{_q(key)}")

    def delete_version(self, name: str, version: int, force: bool = False) -> None:
        self.call("DELETE", _version_path(name, version), params={"force": force})

    # ---------------------------------------------------------------- aliases
    def set_alias(self, name: str, alias: str, version: int, expected: int | None | str = "any") -> int | None:
        """Point ``alias`` at ``version`` atomically; returns the previous version (None if the alias is new)."""
        version = _models.check_version(version)
        _models.check_alias(alias)
        cas = expected != "any"
        body = {"version": version, "expected": expected if cas else None, "compare_and_set": cas}
        return self.call("PUT", f"/models/{_q(name)}/aliases/{_q(alias)}", body)["previous"]

    def delete_alias(self, name: str, alias: str) -> None:
        self.call("DELETE", f"/models/{_q(name)}/aliases/{_q(_models.check_alias(alias))}")

    def get_alias(self, name: str, alias: str) -> ModelVersion:
        return _version(self.call("GET", f"/models/{_q(name)}/aliases/{_q(_models.check_alias(alias))}"))

    # ---------------------------------------------------------------- resolving and reading
    def resolve(self, uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names now (an alias or 'latest' resolves to a number)."""
        if parse_uri(uri).kind != "models":
            raise InvalidInputError(field="uri", value=uri, expected="a models:/ URI")
        return _version(self.call("GET", "/resolve", params={"uri": uri}))

    def locate(self, ref: ModelRef) -> tuple[str, str | None, int | None, str | None]:
        """(storage key, name, version, run_id) of a runs:/ or models:/ reference."""
        if ref.kind == "runs":
            return f"runs/{ref.run_id}/artifacts/{ref.path}", None, None, ref.run_id
        assert ref.name is not None
        tail = f"@{ref.alias}" if ref.alias is not None else f"/{ref.version}"
        found = self.resolve(f"models:/{ref.name}{tail}")
        self._located[found.storage] = (found.name, found.version)
        return found.storage, found.name, found.version, found.run_id

    def local_folder(self, storage: str) -> Path:
        """A local copy of the files under ``storage`` (a key ``locate`` returned), downloaded once through the
        server and checked against the manifest's sha256s before it appears."""
        cache = Path(self.settings.home) / "cache" / "models"
        if storage in self._located:
            name, version = self._located[storage]
            return download_version(self, name, version, storage, cache)
        if storage.startswith("runs/") and "/artifacts/" in storage:
            run_id, _, path = storage.removeprefix("runs/").partition("/artifacts/")
            return download_run_model(self, run_id, path, cache)
        raise InvalidInputError(field="storage", value=storage, expected="a storage key returned by locate()")

    def artifact_uri(self, name: str, version: int) -> str:
        """Where the server keeps the version's files (a folder on the server or an object-store URL)."""
        return str(self.call("GET", f"{_version_path(name, version)}/artifact-uri")["artifact_uri"])

    def manifest(self, name: str, version: int) -> dict[str, Any]:
        """The model manifest of a version (flavor, signature, requirements, metadata, files)."""
        return dict(self.call("GET", f"{_version_path(name, version)}/manifest"))

    def extra_file(self, name: str, version: int, filename: str) -> bytes:
        """The bytes of an extra file stored with a version (``log_model(..., extra_files=...)``)."""
        from mloop._util.names import check_artifact_path

        check_artifact_path(filename, "filename")
        return bytes(self.call("GET", f"{_version_path(name, version)}/extra/{_q(filename, safe='/')}"))

    # ---------------------------------------------------------------- audit and lineage
    def audit(self, model: str | None = None, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Registry changes, newest first: who (the authenticated identity), when, what, before and after."""
        _models.check_text(model, "model")
        params = {k: v for k, v in {"model": model, "action": action, "limit": limit}.items() if v is not None}
        return [AuditEntry(**entry) for entry in self.call("GET", "/audit", params=params)]

    def lineage(self, name: str, version: int) -> dict[str, Any]:
        """Where a version came from: its run, the run's datasets (with digests) and parameters."""
        return dict(self.call("GET", f"{_version_path(name, version)}/lineage"))

    def versions_trained_on(self, digest: str) -> list[ModelVersion]:
        """Every version whose run used a dataset with this digest."""
        return [_version(v) for v in self.call("GET", f"/datasets/{_q(digest)}/versions")]


def _q(value: Any, safe: str = "") -> str:
    return quote(str(value), safe=safe)


def _version_path(name: str, version: Any) -> str:
    # checked here so that a bad number gets the direct path's message, not the web framework's
    return f"/models/{_q(name)}/versions/{_models.check_version(version)}"


def _model(data: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(**data)


_VERSION_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelVersion))


def _version(data: dict[str, Any]) -> ModelVersion:
    values = {k: v for k, v in data.items() if k in _VERSION_FIELDS}  # "uri" is derived, not a field
    values["aliases"] = tuple(values.get("aliases") or ())
    return ModelVersion(**values)
