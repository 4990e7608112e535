"""A real mloop server with auth on, and one token per role (each role held in the project 'default')."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from mloop.auth import AuthStore
from mloop.config import Settings
from tests.server.conftest import LiveServer, serve

ROLES = ("viewer", "editor", "maintainer", "admin")


@dataclass
class AuthServer:
    server: LiveServer
    store: AuthStore
    tokens: dict[str, str]  # identity name -> token text: one per role, 'root' (server admin), 'stranger' (no role)

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start(tmp_path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthServer]:
    monkeypatch.setattr("mloop.server.auth.TOKEN_CACHE_SECONDS", 0.3)  # revocations show within the test
    settings = dataclasses.replace(Settings.load(home=str(tmp_path / "server-home"), db_url=db_url), auth=True)
    store = AuthStore(db_url)
    tokens = {}
    for role in ROLES:
        store.add_user(role)
        store.grant(role, "default", role)
        tokens[role] = store.create_token(role).text
    store.add_user("root", admin=True)
    tokens["root"] = store.create_token("root").text
    store.add_user("stranger")
    tokens["stranger"] = store.create_token("stranger").text
    for server in serve(settings):
        yield AuthServer(server, store, tokens)


@pytest.fixture
def auth_server(tmp_path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthServer]:
    """On SQLite and on PostgreSQL."""
    yield from start(tmp_path, db_url, monkeypatch)


@pytest.fixture
def sqlite_auth_server(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuthServer]:
    yield from start(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}", monkeypatch)
