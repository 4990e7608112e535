"""RegistryClient: registered models, versions and aliases, with the audit log and events.

Topics with more than a few calls live beside it and hang off the client:
``client.environments`` (deployments and approvals), ``client.webhooks`` and ``client.rules``.

>>> import tempfile, mloop
>>> from mloop.config import Settings
>>> registry = RegistryClient(Settings.load(home=tempfile.mkdtemp()))
>>> registry.create_model("doc-model", description="for the docs").name
'doc-model'
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mloop._util.clock import now_ms
from mloop._util.names import check_artifact_path
from mloop.config import Settings
from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.registry import _audit, _models
from mloop.registry import _tables as t
from mloop.registry.entities import AuditEntry, ModelVersion, RegisteredModel
from mloop.registry.packaging import EXTRA, MANIFEST, parse_manifest, read_manifest, verify_files
from mloop.registry.uri import ModelRef, parse_uri
from mloop.store.blob import open_blob_store
from mloop.store.sql import open_database
from mloop.tracking._sql import SqlTrackingRepository
from mloop.tracking.entities import Lifecycle

__all__ = ["RegistryClient"]


class RegistryClient:
    """The model registry over the metadata database and the artifact store of ``settings``.

    With a server URL in the settings (``MLOOP_TRACKING_URI``) the object built is the HTTP transport
    (``mloop.registry._http.HttpRegistryClient``, the same methods), so that no caller reaches past the server.
    """

    def __new__(cls, settings: Settings | None = None) -> RegistryClient:
        if cls is RegistryClient and (settings or Settings.load()).remote:
            from mloop.registry._log import open_registry

            return open_registry(settings or Settings.load())
        return super().__new__(cls)

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.load()
        self.db = open_database(self.settings.db_url)
        # One idle SQLite connection held open: otherwise every short connection is the file's last one, and
        # closing it checkpoints the WAL (about 1 ms per call). The engine itself keeps no connections.
        self._keeper = self.db.engine.raw_connection() if self.db.is_sqlite else None
        self.blobs = open_blob_store(self.settings.artifact_root)
        self.runs = SqlTrackingRepository(self.db, self.blobs)
        self.actor = self.settings.user
        # True when the actor is an authenticated identity (``mloop server`` with auth): approvals then need
        # someone other than the requester; a local user names itself, so the rule would prove nothing there
        self.separate_duties = False
        from mloop.registry.environments import Environments
        from mloop.registry.rules.service import Rules
        from mloop.registry.webhooks import Webhooks

        self.webhooks = Webhooks(self)
        self.environments = Environments(self)
        self.rules = Rules(self)

    def close(self) -> None:
        """Release the idle connection this client holds (the client stays usable)."""
        if self._keeper is not None:
            self._keeper.close()
            self._keeper = None

    def _emit(self, events: list[dict[str, Any]]) -> None:
        """Hand committed changes to the webhooks."""
        if events:
            self.webhooks.dispatch(events)

    # ---------------------------------------------------------------- models
    def create_model(self, name: str, description: str = "", tags: dict[str, Any] | None = None,
                     owner: str | None = None) -> RegisteredModel:
        """Create a registered model (AlreadyExistsError when the name is taken)."""
        _models.check_text(description, "description")
        with self.db.write() as conn:
            _models.insert_model(conn, name, description, owner or self.actor, tags or {})
            event = _audit.record(conn, self.actor, "model.created", name, f"models/{name}",
                                  after={"description": description, "tags": tags or {}})
        self._emit([event])
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            return _models.get_model(conn, name)

    def list_models(self) -> list[RegisteredModel]:
        with self.db.read() as conn:
            return _models.list_models(conn)

    def update_model(self, name: str, description: str | None = None, tags: dict[str, Any] | None = None,
                     ) -> RegisteredModel:
        """Change a model's description and/or set tags."""
        _models.check_text(description, "description")
        before = self.get_model(name)
        with self.db.write() as conn:
            _models.lock_model(conn, name)
            values: dict[str, Any] = {"updated": now_ms()}
            if description is not None:
                values["description"] = str(description)
            conn.execute(t.registered_models.update().where(t.registered_models.c.name == name).values(**values))
            _models.write_tags(conn, t.model_tags, {"name": name}, tags)
            event = _audit.record(conn, self.actor, "model.updated", name, f"models/{name}",
                                  before={"description": before.description, "tags": before.tags},
                                  after={"description": description, "tags": tags})
        self._emit([event])
        return self.get_model(name)

    def delete_model(self, name: str, force: bool = False) -> None:
        """Delete a model and every version with its bytes (guarded versions need ``force``)."""
        for version in self.list_versions(name):
            self.delete_version(name, version.version, force=force)
        with self.db.write() as conn:
            _models.lock_model(conn, name)
            conn.execute(t.registered_models.delete().where(t.registered_models.c.name == name))
            event = _audit.record(conn, self.actor, "model.deleted", name, f"models/{name}")
        self._emit([event])

    # ---------------------------------------------------------------- versions
    def register(self, name: str, source: str | Path, *, description: str = "", tags: dict[str, Any] | None = None,
                 create: bool = True, origin: str | None = None, run_id: str | None = None) -> ModelVersion:
        """Register a new version of ``name`` from ``runs:/<run_id>/<path>`` or a local model folder.

        The model is created on first use (``create=False`` makes that an error). The
        version keeps a snapshot of the source run's metrics. Everything is written in one
        transaction (the run is checked and its metrics read inside it). For a folder whose files came from
        elsewhere (a model the mlflow client logged), ``origin`` is the source the version records and
        ``run_id`` the run that made it.
        """
        ref = _models.check_registration(source, description, origin, tags)
        if ref.kind == "path" and run_id is not None:
            ref = dataclasses.replace(ref, run_id=run_id)
        storage, manifest = self._source(ref)
        values = {"run_id": ref.run_id, "source": origin or (str(source) if ref.kind == "runs" else ref.path),
                  "storage": storage, "flavor": manifest["flavor"],
                  "signature": json.dumps(manifest["signature"]) if manifest.get("signature") else None,
                  "status": "ready", "description": str(description or ""), "created": now_ms(),
                  "creator": self.actor}
        try:
            with self.db.write() as conn:
                values["metrics"] = json.dumps(self._run_metrics(conn, ref.run_id) if ref.run_id else {})
                events = self._ensure_model(conn, name, create)
                version = _models.insert_version(conn, name, values, tags)
                events.append(_audit.record(conn, self.actor, "version.created", name,
                                            f"models/{name}/versions/{version}",
                                            after={"version": version, "source": values["source"],
                                                   "run_id": ref.run_id, "flavor": manifest["flavor"]}))
        except BaseException:
            if ref.kind == "path":
                self.blobs.delete(storage)
            raise
        self._emit(events)
        return ModelVersion(name=name, version=version, run_id=ref.run_id, source=values["source"], storage=storage,
                            flavor=values["flavor"], signature=manifest.get("signature") or None,
                            metrics=json.loads(values["metrics"]), status="ready", description=values["description"],
                            created=values["created"], creator=self.actor,
                            tags={k: str(v) for k, v in (tags or {}).items()}, aliases=())

    def _run_metrics(self, conn: Any, run_id: str) -> dict[str, float]:
        """The run's latest metrics (NaN left out), after checking that the run exists and is active."""
        from mloop.tracking import _tables as tt

        row = conn.execute(select(tt.runs.c.lifecycle_stage).where(tt.runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFoundError(f"No run with id '{run_id}'.", field="source")
        if row.lifecycle_stage != Lifecycle.ACTIVE:
            raise ConflictError(f"Run {run_id} is deleted; restore it before registering its model.",
                                field="source")
        latest = tt.latest_metrics
        return {r.key: r.value for r in conn.execute(select(latest.c.key, latest.c.value)
                                                      .where(latest.c.run_id == run_id))
                if r.value is not None and r.value == r.value}

    def _ensure_model(self, conn: Any, name: str, create: bool) -> list[dict[str, Any]]:
        if conn.execute(select(t.registered_models.c.name).where(t.registered_models.c.name == name)).first():
            return []
        if not create:
            raise NotFoundError(f"No registered model named '{name}'.", field="name")
        if not _models.insert_model(conn, name, "", self.actor, {}, exist_ok=True):
            return []  # another writer created it since the SELECT above
        return [_audit.record(conn, self.actor, "model.created", name, f"models/{name}")]

    def _source(self, ref: ModelRef) -> tuple[str, dict[str, Any]]:
        """(storage key, manifest) of a runs:/ reference or a local folder (copied into the store)."""
        if ref.kind == "runs":
            check_artifact_path(ref.path, "source")  # runs:/<id>/../.. must not name another run's files
            storage = f"runs/{ref.run_id}/artifacts/{ref.path}"
            try:
                manifest = parse_manifest(self.blobs.get_bytes(f"{storage}/{MANIFEST}"), f"{storage}/{MANIFEST}")
            except NotFoundError:
                raise NotFoundError(f"Run {ref.run_id} has no model at '{ref.path}' (no {MANIFEST}); "
                                    "log one with run.log_model(model, ...).", field="source") from None
            return storage, manifest
        folder = Path(str(ref.path))
        manifest = read_manifest(folder)
        verify_files(folder, manifest)
        storage = f"models/{uuid.uuid4().hex}"
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.blobs.put_file(f"{storage}/{path.relative_to(folder).as_posix()}", path)
        return storage, manifest

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            return _models.get_version(conn, name, version)

    def list_versions(self, name: str | None = None) -> list[ModelVersion]:
        """Versions of one model (or of all), oldest first."""
        with self.db.read() as conn:
            return _models.list_versions(conn, name)

    def update_version(self, name: str, version: int, description: str | None = None,
                       tags: dict[str, Any] | None = None) -> ModelVersion:
        _models.check_text(description, "description")
        before = self.get_version(name, version)
        with self.db.write() as conn:
            _models.lock_model(conn, name)
            if description is not None:
                conn.execute(t.model_versions.update().where(t.model_versions.c.name == name,
                                                             t.model_versions.c.version == before.version)
                             .values(description=str(description)))
            _models.write_tags(conn, t.version_tags, {"name": name, "version": before.version}, tags)
            event = _audit.record(conn, self.actor, "version.updated", name, f"models/{name}/versions/{version}",
                                  before={"description": before.description, "tags": before.tags},
                                  after={"description": description, "tags": tags})
        self._emit([event])
        return self.get_version(name, version)

    def delete_tag(self, name: str, key: str, version: int | None = None) -> None:
        """Remove the tag ``key`` from a model, or from one of its versions (no error when it is not set)."""
        table = t.model_tags if version is None else t.version_tags
        where = [table.c.name == name, table.c.key == key]
        if version is not None:
            where.append(table.c.version == _models.check_version(version))
        target = f"models/{name}" + ("" if version is None else f"/versions/{version}")
        with self.db.write() as conn:
            _models.lock_model(conn, name)
            if version is not None:
                _models.get_version(conn, name, version)
            conn.execute(table.delete().where(*where))
            event = _audit.record(conn, self.actor, "version.updated" if version else "model.updated", name,
                                  target, before={"tags": [key]}, after={"tags": []})
        self._emit([event])

    def delete_version(self, name: str, version: int, force: bool = False) -> None:
        """Delete a version and its bytes; a version an alias or environment points to needs ``force``."""
        from mloop.registry._delete import delete_version

        self._emit(delete_version(self, name, _models.check_version(version), force))

    # ---------------------------------------------------------------- aliases
    def set_alias(self, name: str, alias: str, version: int, expected: int | None | str = "any") -> int | None:
        """Point ``alias`` at ``version`` atomically; returns the previous version (None if the alias is new).

        With ``expected=`` the move is a compare-and-set (ConflictError if the alias moved meanwhile).
        """
        version = _models.check_version(version)
        with self.db.write() as conn:
            before = _models.set_alias(conn, name, alias, version, self.actor, expected)
            event = _audit.record(conn, self.actor, "alias.set", name, f"models/{name}/aliases/{alias}",
                                  before=None if before is None else {"version": before},
                                  after={"version": version})
        self._emit([event])
        return before

    def delete_alias(self, name: str, alias: str) -> None:
        with self.db.write() as conn:
            _models.lock_model(conn, name)
            before = _models.alias_version(conn, name, alias)
            conn.execute(t.aliases.delete().where(t.aliases.c.name == name, t.aliases.c.alias == alias))
            event = _audit.record(conn, self.actor, "alias.deleted", name, f"models/{name}/aliases/{alias}",
                                  before={"version": before})
        self._emit([event])

    def get_alias(self, name: str, alias: str) -> ModelVersion:
        with self.db.read() as conn:
            return _models.get_version(conn, name, _models.alias_version(conn, name, alias))

    # ---------------------------------------------------------------- resolving and reading
    def resolve(self, uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names now (an alias or 'latest' resolves to a number)."""
        ref = parse_uri(uri)
        if ref.kind != "models":
            raise InvalidInputError(field="uri", value=uri, expected="a models:/ URI")
        assert ref.name is not None
        with self.db.read() as conn:
            return _models.get_version(conn, ref.name, self._version_of(conn, ref))

    def _version_of(self, conn: Any, ref: ModelRef) -> int:
        assert ref.name is not None
        if ref.alias is not None:
            return _models.alias_version(conn, ref.name, ref.alias)
        if ref.version == "latest":
            from sqlalchemy import func

            found = conn.execute(select(func.max(t.model_versions.c.version))
                                 .where(t.model_versions.c.name == ref.name)).scalar()
            if found is None:
                _models.get_model(conn, ref.name)
                raise NotFoundError(f"Model '{ref.name}' has no versions yet.", field="version")
            return int(found)
        return int(ref.version)  # type: ignore[arg-type]

    def locate(self, ref: ModelRef) -> tuple[str, str | None, int | None, str | None]:
        """(storage key, name, version, run_id) of a runs:/ or models:/ reference, with one query."""
        if ref.kind == "runs":
            return f"runs/{ref.run_id}/artifacts/{ref.path}", None, None, ref.run_id
        assert ref.name is not None
        v = t.model_versions
        with self.db.read() as conn:
            if ref.alias is not None:
                query = (select(v.c.version, v.c.storage, v.c.run_id).join(
                    t.aliases, (t.aliases.c.name == v.c.name) & (t.aliases.c.version == v.c.version))
                    .where(t.aliases.c.name == ref.name, t.aliases.c.alias == ref.alias))
            else:
                number = self._version_of(conn, ref)
                query = select(v.c.version, v.c.storage, v.c.run_id).where(v.c.name == ref.name, v.c.version == number)
            row = conn.execute(query).first()
            if row is None:
                if ref.alias is not None:
                    _models.alias_version(conn, ref.name, ref.alias)
                _models.get_version(conn, ref.name, int(ref.version))  # type: ignore[arg-type]
        return row.storage, ref.name, int(row.version), row.run_id

    def local_folder(self, storage: str) -> Path:
        """A local folder holding the files under ``storage`` (the store itself when it is local)."""
        local_path = getattr(self.blobs, "local_path", None)
        if local_path is not None:
            folder = local_path(storage)  # confined to the store's root like every other key
            if not folder.is_dir():
                raise NotFoundError(f"No model files at '{storage}'; they were deleted or never stored.",
                                    field="uri")
            return folder
        from mloop.registry._cache import download

        return download(self.blobs, storage, Path(self.settings.home) / "cache" / "models")

    def artifact_uri(self, name: str, version: int) -> str:
        """Where the version's files are: a folder path or an object-store URL such as ``s3://...``."""
        return self.blobs.url(self.get_version(name, version).storage)

    def manifest(self, name: str, version: int) -> dict[str, Any]:
        """The model manifest of a version (flavor, signature, requirements, metadata, files)."""
        found = self.get_version(name, version)
        return parse_manifest(self.blobs.get_bytes(f"{found.storage}/{MANIFEST}"), f"{found.storage}/{MANIFEST}")

    def extra_file(self, name: str, version: int, filename: str) -> bytes:
        """The bytes of an extra file stored with a version (``log_model(..., extra_files=...)``)."""
        check_artifact_path(filename, "filename")
        manifest = self.manifest(name, version)
        known = list(manifest.get("extra_files") or [])
        if filename not in known:
            raise NotFoundError(f"Version {version} of '{name}' has no extra file '{filename}'; it has {known}.",
                                field="filename")
        return self.blobs.get_bytes(f"{self.get_version(name, version).storage}/{EXTRA}/{filename}")

    # ---------------------------------------------------------------- audit and lineage
    def audit(self, model: str | None = None, action: str | None = None, limit: int = 100,
              where: Any = None) -> list[AuditEntry]:
        """Registry changes, newest first: who, when, what, before and after. ``where`` is a further SQL
        condition on the audit table (a server keeps the entries its caller may see)."""
        _models.check_text(model, "model")
        with self.db.read() as conn:
            return _audit.query(conn, model, action, limit=limit, where=where)

    def lineage(self, name: str, version: int) -> dict[str, Any]:
        """Where a version came from: its run, the run's datasets (with digests) and parameters."""
        from mloop.registry.lineage import version_lineage

        return version_lineage(self, name, version)

    def versions_from_run(self, run_id: str, name: str | None = None) -> list[ModelVersion]:
        """The versions (of ``name``, or of any model) logged by run ``run_id`` or by a run nested in it, such
        as a flow run's tasks and the runs they started; oldest first."""
        from mloop.registry.lineage import versions_from_run

        return versions_from_run(self, run_id, name)

    def transaction(self) -> Any:
        """A context manager: registry writes (alias, tags, deploy) in one transaction that the caller also
        writes its own rows in (``tx.connection``); see mloop.registry.transaction."""
        from mloop.registry.transaction import open_transaction

        return open_transaction(self)

    def versions_trained_on(self, digest: str) -> list[ModelVersion]:
        """Every version whose run used a dataset with this digest."""
        from mloop.registry.lineage import versions_for_digest

        return versions_for_digest(self, digest)
