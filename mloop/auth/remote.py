"""The AuthStore's admin calls through a remote ``mloop server`` (``/api/auth/users``), for `mloop auth` when
``MLOOP_TRACKING_URI`` names a server: the admin needs a server-admin token there, not the database.

>>> admin = RemoteAuthAdmin("http://127.0.0.1:5000")  # doctest: +SKIP
>>> admin.add_user("ci", service_account=True).kind  # doctest: +SKIP
'service'
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from mloop.auth.store import TokenInfo, UserInfo
from mloop.auth.tokens import NewToken
from mloop.errors import NotFoundError

__all__ = ["RemoteAuthAdmin"]


def _q(part: str) -> str:
    return quote(part, safe="")


class RemoteAuthAdmin:
    """Users, roles and tokens of the server at ``base_url``, with the method names of AuthStore."""

    def __init__(self, base_url: str) -> None:
        from mloop.tracking._http import HttpTrackingRepository

        # the tracking client's transport: the caller's token, retries through a restart, errors as mloop's own
        self._http = HttpTrackingRepository(base_url)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return self._http.call(method, "/auth/users" + path, body)

    def add_user(self, name: str, *, service_account: bool = False, admin: bool = False) -> UserInfo:
        return UserInfo(**self._call("POST", "", {"name": name, "service_account": service_account,
                                                  "admin": admin}))

    def user(self, name: str) -> UserInfo:
        found = [u for u in self.list_users() if u.name == name]
        if not found:
            raise NotFoundError(f"No user named '{name}' on the server.", field="user")
        return found[0]

    def list_users(self) -> list[UserInfo]:
        return [UserInfo(**u) for u in self._call("GET", "")]

    def set_disabled(self, name: str, disabled: bool = True) -> None:
        self._call("POST", f"/{_q(name)}/disabled", {"disabled": disabled})

    def grant(self, name: str, project: str, role: str) -> None:
        self._call("PUT", f"/{_q(name)}/roles/{_q(project)}", {"role": str(role)})

    def revoke(self, name: str, project: str) -> bool:
        return bool(self._call("DELETE", f"/{_q(name)}/roles/{_q(project)}")["had"])

    def create_token(self, name: str, *, expires_in: timedelta | None = None, label: str = "") -> NewToken:
        seconds = None if expires_in is None else max(1, int(expires_in.total_seconds()))
        made = self._call("POST", f"/{_q(name)}/tokens", {"label": label, "expires_in_seconds": seconds})
        return NewToken(prefix=made["prefix"], text=made["token"], digest="")  # the digest stays on the server

    def list_tokens(self, name: str | None = None) -> list[TokenInfo]:
        names = [name] if name is not None else [u.name for u in self.list_users()]
        return [TokenInfo(**t) for n in names for t in self._call("GET", f"/{_q(n)}/tokens")]

    def revoke_token(self, prefix: str) -> None:
        bare = prefix.removeprefix("mlp_").split("_")[0]
        owner = next((t.user for t in self.list_tokens() if t.prefix == bare and t.revoked is None), None)
        if owner is None:
            raise NotFoundError(f"No active token with prefix '{bare}' on the server; `mloop auth tokens list` "
                                "shows them.", field="token")
        self._call("DELETE", f"/{_q(owner)}/tokens/{_q(bare)}")
