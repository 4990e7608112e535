"""Users, service accounts, their roles and tokens over REST, under ``/api/auth/users``: for server admins only
(mloop/server/permissions.py), so that `mloop auth` works from any machine against a remote server.

A token is shown once, in the answer that creates it, and stored only as its sha256; listings show prefixes.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from mloop._util.openapi import error_responses
from mloop.auth.store import AuthStore
from mloop.server.api._schema import Name, TextPath

router = APIRouter(prefix="/auth/users", tags=["auth"])

MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600  # ten years: a longer lifetime is a typo for "never"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(_Body):
    name: Name = Field(min_length=1, max_length=128)
    service_account: StrictBool = False
    admin: StrictBool = False


class DisabledIn(_Body):
    disabled: StrictBool = True


class RoleIn(_Body):
    role: Annotated[str, Field(min_length=1, max_length=16, description="viewer, editor, maintainer or admin")]


class TokenIn(_Body):
    label: Annotated[str, Field(max_length=256)] = ""
    expires_in_seconds: int | None = Field(default=None, strict=True, ge=1, le=MAX_LIFETIME_SECONDS,
                                           description="Lifetime of the token (none: it never expires).")


def _store(request: Request) -> AuthStore:
    state = request.app.state
    if getattr(state, "auth_store", None) is None:
        state.auth_store = AuthStore(state.settings.db_url)
    return state.auth_store  # type: ignore[no-any-return]


@router.post("", status_code=201, responses=error_responses(409))
def add_user(body: UserIn, request: Request) -> dict[str, Any]:
    """Add a user or a service account (``admin``: a server-wide admin)."""
    user = _store(request).add_user(body.name, service_account=body.service_account, admin=body.admin)
    return dataclasses.asdict(user)


@router.post("/{name}/disabled", responses=error_responses(404))
def set_disabled(name: TextPath, body: DisabledIn, request: Request) -> dict[str, Any]:
    """Disable a user (every token of it is refused within the servers' token cache time) or enable it again."""
    store = _store(request)
    store.set_disabled(name, body.disabled)
    return dataclasses.asdict(store.user(name))


@router.put("/{name}/roles/{project}", responses=error_responses(404))
def grant(name: TextPath, project: TextPath, body: RoleIn, request: Request) -> dict[str, Any]:
    """Give the user ``role`` in ``project`` (replacing the one it had there)."""
    store = _store(request)
    store.grant(name, project, body.role)
    return dataclasses.asdict(store.user(name))


@router.delete("/{name}/roles/{project}", responses=error_responses(404))
def revoke(name: TextPath, project: TextPath, request: Request) -> dict[str, Any]:
    """Take away the user's role in ``project``; ``had`` says whether it had one."""
    had = _store(request).revoke(name, project)
    return {"name": name, "project": project, "had": had}


@router.post("/{name}/tokens", status_code=201, responses=error_responses(404))
def create_token(name: TextPath, body: TokenIn, request: Request) -> dict[str, Any]:
    """A new token for the user: ``token`` is in this answer only, and never stored nor shown again."""
    lifetime = None if body.expires_in_seconds is None else timedelta(seconds=body.expires_in_seconds)
    token = _store(request).create_token(name, expires_in=lifetime, label=body.label)
    return {"user": name, "prefix": token.prefix, "token": token.text}


@router.get("/{name}/tokens", responses=error_responses(404))
def list_tokens(name: TextPath, request: Request) -> list[dict[str, Any]]:
    """The user's tokens by prefix and dates (never the tokens themselves)."""
    store = _store(request)
    store.user(name)  # 404 for an unknown user, rather than an empty list
    return [dataclasses.asdict(t) for t in store.list_tokens(name)]


@router.delete("/{name}/tokens/{prefix}", responses=error_responses(404))
def revoke_token(name: TextPath, prefix: TextPath, request: Request) -> dict[str, str]:
    """Revoke the user's token with this prefix (servers refuse it within their token cache time)."""
    store = _store(request)
    bare = prefix.removeprefix("mlp_").split("_")[0]
    if not any(t.prefix == bare for t in store.list_tokens(name)):
        from mloop.errors import NotFoundError

        raise NotFoundError(f"'{name}' has no token with prefix '{bare}'.", field="prefix")
    store.revoke_token(bare)
    return {"user": name, "prefix": bare, "status": "revoked"}
