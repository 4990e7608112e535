"""Deployment environments (``staging``, ``production``...): what runs where, its history, and approvals.

An environment that requires approval turns ``deploy`` into a pending request that
someone approves or rejects, with a comment; every step is in the audit log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from mloop._util.clock import now_ms
from mloop._util.names import check_name
from mloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from mloop.registry import _audit, _models
from mloop.registry import _tables as t
from mloop.registry.entities import ApprovalRequest, Deployment

if TYPE_CHECKING:
    from mloop.registry.client import RegistryClient

__all__ = ["Environments"]


class Environments:
    """``client.environments``: create environments, deploy versions, read history, decide approvals."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def create(self, env: str, description: str = "", requires_approval: bool = False) -> dict[str, Any]:
        check_name(env, "env")
        _models.check_text(description, "description")
        if not isinstance(requires_approval, bool):
            raise InvalidInputError(field="requires_approval", value=requires_approval, expected="true or false")
        with self.client.db.write() as conn:
            if conn.execute(select(t.environments.c.env).where(t.environments.c.env == env)).first():
                raise AlreadyExistsError(f"An environment named '{env}' already exists.", field="env")
            conn.execute(insert(t.environments).values(env=env, description=description or "",
                                                       requires_approval=requires_approval, created=now_ms()))
            event = _audit.record(conn, self.client.actor, "environment.created", None, f"environments/{env}",
                                  after={"requires_approval": requires_approval, "description": description})
        self.client._emit([event])
        return self.get(env)

    def get(self, env: str) -> dict[str, Any]:
        with self.client.db.read() as conn:
            row = _env(conn, env)
            rows = conn.execute(select(t.deployments).where(t.deployments.c.env == env))
            deployed = {r.name: r.version for r in rows}
        return {"env": row.env, "description": row.description, "requires_approval": bool(row.requires_approval),
                "created": row.created, "models": deployed}

    def list(self) -> list[dict[str, Any]]:
        with self.client.db.read() as conn:
            names = [r.env for r in conn.execute(select(t.environments.c.env).order_by(t.environments.c.env))]
        return [self.get(n) for n in names]

    def current(self, name: str, env: str) -> int | None:
        """The version of ``name`` deployed in ``env`` now (None when none is)."""
        with self.client.db.read() as conn:
            _env(conn, env)
            row = conn.execute(select(t.deployments.c.version).where(t.deployments.c.env == env,
                                                                     t.deployments.c.name == name)).first()
        return None if row is None else int(row.version)

    def deploy(self, name: str, version: int, env: str, reason: str = "") -> Deployment | ApprovalRequest:
        """Put ``version`` of ``name`` into ``env``; returns the change, or a pending request if approval is needed."""
        version = _models.check_version(version)
        _models.check_text(reason, "reason")
        with self.client.db.write() as conn:
            row = _env(conn, env)
            _models.lock_model(conn, name)
            _models.get_version(conn, name, version)
            if row.requires_approval:
                request_id, event = self._request(conn, env, name, version, reason)
            else:
                event = self._move(conn, env, name, version, reason)
        self.client._emit([event])
        return self.request(request_id) if row.requires_approval else self.history(env, name, limit=1)[0]

    def undeploy(self, name: str, env: str, reason: str = "") -> None:
        with self.client.db.write() as conn:
            _env(conn, env)
            _models.lock_model(conn, name)
            previous = _deployed(conn, env, name)
            if previous is None:
                raise NotFoundError(f"Model '{name}' is not deployed in '{env}'.", field="env")
            conn.execute(t.deployments.delete().where(t.deployments.c.env == env, t.deployments.c.name == name))
            event = self.record_change(conn, env, name, None, previous, reason)
        self.client._emit([event])

    def _move(self, conn: Connection, env: str, name: str, version: int, reason: str) -> dict[str, Any]:
        previous = _deployed(conn, env, name)
        values = {"version": version, "updated": now_ms(), "updated_by": self.client.actor}
        if previous is None:
            conn.execute(insert(t.deployments).values(env=env, name=name, **values))
        else:
            conn.execute(update(t.deployments).where(t.deployments.c.env == env, t.deployments.c.name == name)
                         .values(**values))
        return self.record_change(conn, env, name, version, previous, reason)

    def record_change(self, conn: Connection, env: str, name: str, version: int | None, previous: int | None,
                      reason: str) -> dict[str, Any]:
        """Append to the environment's history and the audit log (used by deletion too)."""
        conn.execute(insert(t.deployment_history).values(env=env, name=name, version=version, previous=previous,
                                                         time=now_ms(), actor=self.client.actor, reason=reason or ""))
        return _audit.record(conn, self.client.actor, "deployment.changed", name, f"environments/{env}/{name}",
                             before=None if previous is None else {"version": previous},
                             after=None if version is None else {"version": version})

    def history(self, env: str | None = None, name: str | None = None, limit: int = 100,
                where: Any = None) -> list[Deployment]:
        """Changes newest first, for one environment and/or one model; ``where`` is a further SQL condition on
        the history table (a server keeps the models its caller may see)."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidInputError(field="limit", value=limit, expected="a positive whole number")
        _models.check_text(env, "env")
        _models.check_text(name, "name")
        h = t.deployment_history
        q = select(h).order_by(h.c.id.desc()).limit(limit)
        if env is not None:
            q = q.where(h.c.env == env)
        if name is not None:
            q = q.where(h.c.name == name)
        if where is not None:
            q = q.where(where)
        with self.client.db.read() as conn:
            if env is not None:
                _env(conn, env)
            return [Deployment(env=r.env, name=r.name, version=r.version, previous=r.previous, time=r.time,
                               actor=r.actor, reason=r.reason) for r in conn.execute(q)]

    # ---------------------------------------------------------------- approvals
    def _request(self, conn: Connection, env: str, name: str, version: int, reason: str) -> tuple[int, dict[str, Any]]:
        p = t.promotion_requests
        pending = conn.execute(select(p.c.id).where(p.c.env == env, p.c.name == name, p.c.version == version,
                                                    p.c.status == "pending")).first()
        if pending is not None:
            raise ConflictError(f"Version {version} of '{name}' already waits for approval in '{env}' "
                                f"(request {pending.id}).", field="version")
        result = conn.execute(insert(p).values(env=env, name=name, version=version, status="pending",
                                               requested_by=self.client.actor, requested=now_ms(),
                                               reason=reason or "", comment=""))
        request_id = int(result.inserted_primary_key[0])
        event = _audit.record(conn, self.client.actor, "approval.requested", name, f"approvals/{request_id}",
                              after={"env": env, "version": version, "reason": reason})
        return request_id, event

    def request(self, request_id: int) -> ApprovalRequest:
        with self.client.db.read() as conn:
            return _approval(_request_row(conn, request_id))

    def pending(self, env: str | None = None, name: str | None = None) -> list[ApprovalRequest]:
        p = t.promotion_requests
        q = select(p).where(p.c.status == "pending").order_by(p.c.id)
        if env is not None:
            q = q.where(p.c.env == env)
        if name is not None:
            q = q.where(p.c.name == name)
        with self.client.db.read() as conn:
            return [_approval(r) for r in conn.execute(q)]

    def approve(self, request_id: int, comment: str = "") -> Deployment:
        """Approve a pending request: the version moves into the environment now."""
        self._decide(request_id, "approved", comment)
        req = self.request(request_id)
        return self.history(req.env, req.name, limit=1)[0]

    def reject(self, request_id: int, comment: str = "") -> ApprovalRequest:
        self._decide(request_id, "rejected", comment)
        return self.request(request_id)

    def _decide(self, request_id: int, status: str, comment: str) -> None:
        _models.check_text(comment, "comment")
        p = t.promotion_requests
        with self.client.db.write() as conn:
            row = _request_row(conn, request_id, lock=True)
            if row.status != "pending":
                raise ConflictError(f"Request {request_id} was already {row.status}.", field="request_id")
            if self.client.separate_duties and row.requested_by == self.client.actor:
                raise PermissionDeniedError(f"'{self.client.actor}' asked for request {request_id} and so may not "
                                            "decide it: another maintainer must.", field="request_id")
            conn.execute(update(p).where(p.c.id == row.id).values(status=status, decided_by=self.client.actor,
                                                                  decided=now_ms(), comment=comment or ""))
            events = [_audit.record(conn, self.client.actor, f"approval.{status}", row.name,
                                    f"approvals/{row.id}", before={"status": "pending"},
                                    after={"status": status, "comment": comment, "env": row.env,
                                           "version": row.version})]
            if status == "approved":
                _models.lock_model(conn, row.name)
                _models.get_version(conn, row.name, row.version)
                events.append(self._move(conn, row.env, row.name, row.version,
                                         f"approved request {row.id}" + (f": {comment}" if comment else "")))
        self.client._emit(events)


def _env(conn: Connection, env: str) -> Any:
    row = conn.execute(select(t.environments).where(t.environments.c.env == env)).first()
    if row is None:
        known = [r.env for r in conn.execute(select(t.environments.c.env))]
        raise NotFoundError(f"No environment named '{env}'. Known: {known}; create it with "
                            "environments.create(...) or `mloop models env create`.", field="env")
    return row


def _deployed(conn: Connection, env: str, name: str) -> int | None:
    row = conn.execute(select(t.deployments.c.version).where(t.deployments.c.env == env,
                                                             t.deployments.c.name == name)).first()
    return None if row is None else int(row.version)


def _request_row(conn: Connection, request_id: Any, lock: bool = False) -> Any:
    if isinstance(request_id, bool) or not str(request_id).isdigit():
        raise InvalidInputError(field="request_id", value=request_id, expected="a request number")
    q = select(t.promotion_requests).where(t.promotion_requests.c.id == int(request_id))
    row = conn.execute(q.with_for_update() if lock else q).first()
    if row is None:
        raise NotFoundError(f"No approval request {request_id}.", field="request_id")
    return row


def _approval(r: Any) -> ApprovalRequest:
    return ApprovalRequest(id=r.id, env=r.env, name=r.name, version=r.version, status=r.status,
                           requested_by=r.requested_by, requested=r.requested, reason=r.reason,
                           decided_by=r.decided_by, decided=r.decided, comment=r.comment)
