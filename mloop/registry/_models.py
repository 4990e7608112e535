"""Registered models, versions and aliases on SQL (SQLite or PostgreSQL), one connection at a time.

Every change first locks the model's row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite
write transactions are serialized by ``BEGIN IMMEDIATE``), so concurrent writers queue
instead of losing an update, and version numbers never repeat.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from mloop._util import names
from mloop._util.clock import now_ms
from mloop._util.names import check_key, check_name
from mloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mloop.registry import _tables as t
from mloop.registry.entities import ModelVersion, RegisteredModel
from mloop.registry.uri import ALIAS_PATTERN, ModelRef, parse_uri


def lock_model(conn: Connection, name: str) -> Any:
    """The model's row, locked for the rest of the transaction."""
    row = conn.execute(select(t.registered_models).where(t.registered_models.c.name == name)
                       .with_for_update()).first()
    if row is None:
        raise NotFoundError(f"No registered model named '{name}'; create it with create_model or register "
                            "a version under it.", field="name")
    return row


def insert_model(conn: Connection, name: str, description: str, owner: str, tags: dict[str, str],
                 exist_ok: bool = False) -> bool:
    """Create the model row; False when it already exists and ``exist_ok`` (AlreadyExistsError otherwise).

    The insert does nothing on a taken name instead of failing: two writers creating one model at
    once (PostgreSQL lets both pass a SELECT before either commits) then both go on, instead of one
    dying on a unique violation that aborts its whole transaction.
    """
    check_name(name, "name")
    now = now_ms()
    row = {"name": name, "description": description or "", "owner": owner, "created": now, "updated": now,
           "latest_version": 0}
    insert_row = _insert_if_missing(conn, t.registered_models, row).returning(t.registered_models.c.name)
    created = conn.execute(insert_row).first() is not None
    if not created:
        if exist_ok:
            return False
        raise AlreadyExistsError(f"A registered model named '{name}' already exists.", field="name")
    write_tags(conn, t.model_tags, {"name": name}, tags)
    return True


def _insert_if_missing(conn: Connection, table: Any, row: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING in the connection's dialect (SQLite and PostgreSQL spell it alike)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).values(**row).on_conflict_do_nothing()


def write_tags(conn: Connection, table: Any, key: dict[str, Any], tags: dict[str, Any] | None) -> None:
    if not tags:
        return
    if not isinstance(tags, dict):
        raise InvalidInputError(field="tags", value=tags, expected="a dict of key: value")
    for k in tags:
        check_key(k, "tag key")
    tags = {k: names.check_text(str(v), f"tags.{k}", MAX_TAG_CHARS) for k, v in tags.items()}
    where = [table.c[c] == v for c, v in key.items()]
    conn.execute(delete(table).where(*where, table.c.key.in_(list(tags))))
    conn.execute(insert(table), [{**key, "key": k, "value": str(v)} for k, v in tags.items()])


def get_model(conn: Connection, name: str) -> RegisteredModel:
    row = conn.execute(select(t.registered_models).where(t.registered_models.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"No registered model named '{name}'.", field="name")
    return _model(conn, [row])[0]


def list_models(conn: Connection) -> list[RegisteredModel]:
    return _model(conn, conn.execute(select(t.registered_models).order_by(t.registered_models.c.name)).all())


def _model(conn: Connection, rows: list[Any]) -> list[RegisteredModel]:
    names = [r.name for r in rows]
    tags: dict[str, dict[str, str]] = {n: {} for n in names}
    aliases: dict[str, dict[str, int]] = {n: {} for n in names}
    if names:
        for r in conn.execute(select(t.model_tags).where(t.model_tags.c.name.in_(names))):
            tags[r.name][r.key] = r.value
        for r in conn.execute(select(t.aliases).where(t.aliases.c.name.in_(names))):
            aliases[r.name][r.alias] = r.version
    return [RegisteredModel(name=r.name, description=r.description, owner=r.owner, created=r.created,
                            updated=r.updated, latest_version=r.latest_version, tags=tags[r.name],
                            aliases=aliases[r.name]) for r in rows]


def insert_version(conn: Connection, name: str, values: dict[str, Any], tags: dict[str, str] | None) -> int:
    """Allocate the next version number under the locked model and store the version."""
    lock_model(conn, name)
    conn.execute(update(t.registered_models).where(t.registered_models.c.name == name)
                 .values(latest_version=t.registered_models.c.latest_version + 1, updated=now_ms()))
    version = conn.execute(select(t.registered_models.c.latest_version)
                           .where(t.registered_models.c.name == name)).scalar_one()
    conn.execute(insert(t.model_versions).values(name=name, version=version, **values))
    write_tags(conn, t.version_tags, {"name": name, "version": version}, tags)
    return int(version)


def get_version(conn: Connection, name: str, version: int) -> ModelVersion:
    version = check_version(version)
    row = conn.execute(select(t.model_versions).where(t.model_versions.c.name == name,
                                                      t.model_versions.c.version == version)).first()
    if row is None:
        known = conn.execute(select(func.max(t.model_versions.c.version))
                             .where(t.model_versions.c.name == name)).scalar()
        hint = f" (latest is {known})" if known else "" if known is not None else ""
        get_model(conn, name)
        raise NotFoundError(f"Model '{name}' has no version {version}{hint}.", field="version")
    return versions_from_rows(conn, [row])[0]


def list_versions(conn: Connection, name: str | None = None) -> list[ModelVersion]:
    q = select(t.model_versions).order_by(t.model_versions.c.name, t.model_versions.c.version)
    if name is not None:
        get_model(conn, name)
        q = q.where(t.model_versions.c.name == name)
    return versions_from_rows(conn, conn.execute(q).all())


def versions_from_rows(conn: Connection, rows: list[Any]) -> list[ModelVersion]:
    names = sorted({r.name for r in rows})
    tags: dict[tuple[str, int], dict[str, str]] = {}
    aliases: dict[tuple[str, int], list[str]] = {}
    if names:
        for r in conn.execute(select(t.version_tags).where(t.version_tags.c.name.in_(names))):
            tags.setdefault((r.name, r.version), {})[r.key] = r.value
        for r in conn.execute(select(t.aliases).where(t.aliases.c.name.in_(names)).order_by(t.aliases.c.alias)):
            aliases.setdefault((r.name, r.version), []).append(r.alias)
    return [ModelVersion(
        name=r.name, version=r.version, run_id=r.run_id, source=r.source, storage=r.storage, flavor=r.flavor,
        signature=json.loads(r.signature) if r.signature else None, metrics=json.loads(r.metrics),
        status=r.status, description=r.description, created=r.created, creator=r.creator,
        tags=tags.get((r.name, r.version), {}), aliases=tuple(aliases.get((r.name, r.version), ())))
        for r in rows]


def check_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int | str) or not str(version).isdigit() \
            or not 1 <= int(version) <= MAX_VERSION:
        raise InvalidInputError(field="version", value=version, expected=f"a version number from 1 to {MAX_VERSION}")
    return int(version)


MAX_VERSION = 2**31 - 1  # an INTEGER column on PostgreSQL
MAX_TAG_CHARS = 8000


def check_text(value: Any, field: str) -> str | None:
    """``value`` when it is text every store keeps alike (or None); InvalidInputError otherwise."""
    return None if value is None else names.check_text(value, field)


def alias_version(conn: Connection, name: str, alias: str) -> int:
    row = conn.execute(select(t.aliases.c.version).where(t.aliases.c.name == name, t.aliases.c.alias == alias)).first()
    if row is None:
        known = sorted(r.alias for r in conn.execute(select(t.aliases.c.alias).where(t.aliases.c.name == name)))
        get_model(conn, name)
        raise NotFoundError(f"Model '{name}' has no alias '{alias}'. Its aliases: {known}.", field="alias")
    return int(row.version)


def set_alias(conn: Connection, name: str, alias: str, version: int, actor: str,
              expected: int | None | str = "any") -> int | None:
    """Point ``alias`` at ``version``; returns the version it pointed at before (None if new).

    ``expected`` makes it a compare-and-set: the move happens only if the alias points
    at ``expected`` now (None: the alias must not exist yet).
    """
    check_alias(alias)
    lock_model(conn, name)
    get_version(conn, name, version)
    row = conn.execute(select(t.aliases.c.version).where(t.aliases.c.name == name, t.aliases.c.alias == alias)).first()
    before = None if row is None else int(row.version)
    if expected != "any" and expected != before:
        raise ConflictError(f"Alias '{alias}' of '{name}' points at version {before}, not {expected}; "
                            "someone moved it meanwhile. Read it again and retry.", field="alias")
    now = now_ms()
    if row is None:
        conn.execute(insert(t.aliases).values(name=name, alias=alias, version=version, updated=now, updated_by=actor))
    else:
        conn.execute(update(t.aliases).where(t.aliases.c.name == name, t.aliases.c.alias == alias)
                     .values(version=version, updated=now, updated_by=actor))
    return before


def check_registration(source: Any, description: Any, origin: Any, tags: Any) -> ModelRef:
    """The parsed source of a ``register`` call, after checking its arguments (both transports ask the same).

    >>> check_registration("runs:/" + "a" * 32 + "/model", "", None, None).kind
    'runs'
    """
    check_text(description, "description")
    check_text(origin, "origin")
    ref = parse_uri(str(source))
    if ref.kind == "models":
        raise InvalidInputError(field="source", value=str(source),
                                expected="runs:/<run_id>/<path> or a local model folder")
    if tags is not None and not isinstance(tags, dict):
        raise InvalidInputError(field="tags", value=tags, expected="a dict of key: value")
    return ref


def check_alias(alias: Any) -> str:
    # ASCII only, as in a models:/<name>@<alias> URI (str.isalnum would also take 'é', which no URI resolves)
    if not isinstance(alias, str) or len(alias) > 256 or not re.fullmatch(ALIAS_PATTERN, alias):
        raise InvalidInputError(field="alias", value=alias,
                                expected="a name of letters, digits, '-' or '_' that is not only digits")
    return alias
