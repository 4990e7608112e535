"""Registry changes inside the caller's transaction: another capability (automation) moves an alias, tags a
version or deploys in the same transaction that records its own state, so both happen or neither does.

``RegistryClient.transaction()`` opens one write transaction and yields a ``RegistryTransaction``; its
``connection`` is for the caller's own rows; the audit events are handed to the webhooks after the commit.

>>> import tempfile
>>> from mloop.config import Settings
>>> from mloop.registry import registry_for
>>> registry = registry_for(Settings.load(home=tempfile.mkdtemp()))
>>> _ = registry.create_model("doc-tx")
>>> with registry.transaction() as tx:
...     tx.set_model_tags("doc-tx", {"team": "maps"})
>>> registry.get_model("doc-tx").tags["team"]
'maps'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select

from mloop.registry import _audit, _models
from mloop.registry import _tables as t

__all__ = ["RegistryTransaction", "open_transaction"]


class RegistryTransaction:
    """Registry writes on one open connection; each checks and audits exactly as the client's own method does."""

    def __init__(self, client: Any, connection: Connection) -> None:
        self.client = client
        self.connection = connection
        self.events: list[dict[str, Any]] = []

    def lock(self, name: str) -> None:
        """Serialize writers of model ``name`` until the transaction ends."""
        _models.lock_model(self.connection, name)

    def alias(self, name: str, alias: str) -> int | None:
        """The version ``alias`` points at now, or None when it is not set."""
        row = self.connection.execute(select(t.aliases.c.version).where(
            t.aliases.c.name == name, t.aliases.c.alias == alias)).first()
        return None if row is None else int(row.version)

    def set_alias(self, name: str, alias: str, version: int, expected: int | None | str = "any") -> int | None:
        """Point ``alias`` at ``version`` (compare-and-set with ``expected``); returns the previous version."""
        version = _models.check_version(version)
        before = _models.set_alias(self.connection, name, alias, version, self.client.actor, expected)
        self.events.append(_audit.record(self.connection, self.client.actor, "alias.set", name,
                                         f"models/{name}/aliases/{alias}",
                                         before=None if before is None else {"version": before},
                                         after={"version": version}))
        return before

    def tag_version(self, name: str, version: int, tags: dict[str, Any]) -> None:
        """Set ``tags`` on one version (the others it has stay)."""
        _models.write_tags(self.connection, t.version_tags, {"name": name, "version": int(version)}, tags)
        self.events.append(_audit.record(self.connection, self.client.actor, "version.updated", name,
                                         f"models/{name}/versions/{version}", after={"tags": tags}))

    def set_model_tags(self, name: str, tags: dict[str, Any]) -> None:
        """Set ``tags`` on the registered model ``name``."""
        self.lock(name)
        _models.write_tags(self.connection, t.model_tags, {"name": name}, tags)
        self.events.append(_audit.record(self.connection, self.client.actor, "model.updated", name,
                                         f"models/{name}", after={"tags": tags}))

    def delete_model_tags(self, name: str, keys: list[str]) -> None:
        """Remove ``keys`` from the model's tags (no error for a key that is not set)."""
        self.lock(name)
        self.connection.execute(t.model_tags.delete().where(t.model_tags.c.name == name, t.model_tags.c.key.in_(keys)))
        self.events.append(_audit.record(self.connection, self.client.actor, "model.updated", name,
                                         f"models/{name}", before={"tags": keys}, after={"tags": []}))

    def deploy(self, name: str, version: int, env: str, reason: str) -> dict[str, Any]:
        """Deploy ``version`` to ``env``, or file an approval request when ``env`` requires one (a person still
        decides): ``{"environment": env}`` or ``{"approval_request": id}``."""
        from mloop.registry.environments import _env

        envs = self.client.environments
        if _env(self.connection, env).requires_approval:
            request_id, event = envs._request(self.connection, env, name, version, reason)
            self.events.append(event)
            return {"approval_request": request_id}
        self.events.append(envs._move(self.connection, env, name, version, reason))
        return {"environment": env}


@contextmanager
def open_transaction(client: Any) -> Iterator[RegistryTransaction]:
    """One write transaction on ``client``'s database; its events reach the webhooks once it committed."""
    with client.db.write() as conn:
        tx = RegistryTransaction(client, conn)
        yield tx
    client._emit(tx.events)
