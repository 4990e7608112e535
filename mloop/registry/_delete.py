"""Deleting a version: guarded by aliases and environments, and its bytes go with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from mloop.errors import ConflictError
from mloop.registry import _audit, _models
from mloop.registry import _tables as t

if TYPE_CHECKING:
    from mloop.registry.client import RegistryClient


def delete_version(client: RegistryClient, name: str, version: int, force: bool) -> list[dict[str, Any]]:
    """Remove the version's row (and, with ``force``, the aliases and deployments on it), then its bytes."""
    events = []
    with client.db.write() as conn:
        _models.lock_model(conn, name)
        found = _models.get_version(conn, name, version)
        aliases = [r.alias for r in conn.execute(select(t.aliases.c.alias).where(
            t.aliases.c.name == name, t.aliases.c.version == version))]
        envs = [r.env for r in conn.execute(select(t.deployments.c.env).where(
            t.deployments.c.name == name, t.deployments.c.version == version))]
        if (aliases or envs) and not force:
            raise ConflictError(
                f"Version {version} of '{name}' is in use (aliases {aliases}, environments {envs}); "
                "move them first or delete with force=True.", field="version")
        for alias in aliases:
            events.append(_audit.record(conn, client.actor, "alias.deleted", name, f"models/{name}/aliases/{alias}",
                                        before={"version": version}))
        conn.execute(delete(t.aliases).where(t.aliases.c.name == name, t.aliases.c.version == version))
        for env in envs:
            events.append(client.environments.record_change(conn, env, name, None, version, "version deleted"))
        conn.execute(delete(t.deployments).where(t.deployments.c.name == name, t.deployments.c.version == version))
        conn.execute(delete(t.version_tags).where(t.version_tags.c.name == name, t.version_tags.c.version == version))
        conn.execute(delete(t.model_versions).where(t.model_versions.c.name == name,
                                                    t.model_versions.c.version == version))
        shared = conn.execute(select(t.model_versions.c.version).where(
            t.model_versions.c.storage == found.storage).limit(1)).first()
        events.append(_audit.record(conn, client.actor, "version.deleted", name,
                                    f"models/{name}/versions/{version}", before=found.to_dict()))
    if shared is None:
        _delete_bytes(client, found.storage, found.run_id)
    return events


def _delete_bytes(client: RegistryClient, storage: str, run_id: str | None) -> None:
    prefix = f"runs/{run_id}/artifacts/"
    if run_id and storage.startswith(prefix):
        try:
            client.runs.delete_artifact(run_id, storage[len(prefix):])
            return
        except Exception:  # the run's artifact rows are gone already: delete the bytes below
            pass
    client.blobs.delete(storage)
