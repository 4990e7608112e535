"""Browser sessions over real HTTP: signing in turns a token into a cookie that is not the token, changes need the
CSRF header, logout and revocation end the session, failed sign-ins are throttled and never echo the token."""

from __future__ import annotations

import time

import httpx

from tests.auth.conftest import AuthServer


def _login(server: AuthServer, who: str, **extra: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/auth/login", json={"token": server.tokens[who], **extra}, timeout=30)


def _browser(server: AuthServer, answer: httpx.Response) -> httpx.Client:
    return httpx.Client(base_url=server.url, cookies=answer.cookies, timeout=30)


def test_login_sets_a_strict_http_only_cookie_that_is_not_the_token(sqlite_auth_server: AuthServer) -> None:
    answer = _login(sqlite_auth_server, "editor")
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # plain http on 127.0.0.1: a Secure cookie would never come back
    secret = answer.cookies["mloop_session"]
    assert sqlite_auth_server.tokens["editor"] not in cookie and secret not in sqlite_auth_server.tokens.values()
    assert answer.json()["name"] == "editor" and answer.json()["csrf"]
    with _browser(sqlite_auth_server, answer) as browser:
        me = browser.get("/api/auth/whoami").json()
        assert me["name"] == "editor" and me["via"] == "session" and me["csrf"] == answer.json()["csrf"]
        assert browser.get("/api/experiments").status_code == 200


def test_a_change_with_the_cookie_needs_the_csrf_header(sqlite_auth_server: AuthServer) -> None:
    answer = _login(sqlite_auth_server, "editor")
    csrf = answer.json()["csrf"]
    with _browser(sqlite_auth_server, answer) as browser:
        refused = browser.post("/api/experiments", json={"name": "forged"})
        assert refused.status_code == 403 and refused.json()["field"] == "x-mloop-csrf"
        wrong = browser.post("/api/experiments", json={"name": "forged"}, headers={"X-Mloop-CSRF": "x" * 43})
        assert wrong.status_code == 403
        other_site = browser.post("/api/experiments", json={"name": "forged"},
                                  headers={"X-Mloop-CSRF": csrf, "Origin": "http://evil.example"})
        assert other_site.status_code == 403
        names = [e["name"] for e in browser.get("/api/experiments").json()]
        assert "forged" not in names
        made = browser.post("/api/experiments", json={"name": "made-in-the-page"}, headers={"X-Mloop-CSRF": csrf})
        assert made.status_code in (200, 201), made.text


def test_logout_ends_the_session_at_once(auth_server: AuthServer) -> None:
    """On SQLite and on PostgreSQL."""
    answer = _login(auth_server, "viewer")
    secret = answer.cookies["mloop_session"]
    with _browser(auth_server, answer) as browser:
        assert browser.get("/api/experiments").status_code == 200
        out = browser.post("/api/auth/logout")
        assert out.status_code == 200 and "mloop_session=" in out.headers["set-cookie"]
    replayed = httpx.get(f"{auth_server.url}/api/experiments", cookies={"mloop_session": secret})
    assert replayed.status_code == 401


def test_a_revoked_token_ends_its_sessions(sqlite_auth_server: AuthServer) -> None:
    token = sqlite_auth_server.store.create_token("viewer")
    answer = httpx.post(f"{sqlite_auth_server.url}/api/auth/login", json={"token": token.text})
    with _browser(sqlite_auth_server, answer) as browser:
        assert browser.get("/api/experiments").status_code == 200
        sqlite_auth_server.store.revoke_token(token.prefix)
        time.sleep(2.5)  # the session cache's time (SESSION_CACHE_SECONDS)
        assert browser.get("/api/experiments").status_code == 401


def test_a_login_for_another_user_or_a_bad_token_is_refused_and_throttled(sqlite_auth_server: AuthServer) -> None:
    wrong_user = _login(sqlite_auth_server, "editor", user="admin")
    assert wrong_user.status_code == 401 and "mloop_session" not in wrong_user.cookies
    guesses = []
    for i in range(5):
        guess = f"mlp_{'a' * 12}_{str(i) * 43}"
        started = time.monotonic()
        answer = httpx.post(f"{sqlite_auth_server.url}/api/auth/login", json={"token": guess})
        guesses.append((answer, time.monotonic() - started))
        assert guess not in answer.text
    assert all(a.status_code == 401 for a, _ in guesses[:4]) and all(took >= 0.45 for _, took in guesses[:4])
    long_secret = "mlp_" + "s3cr3t" * 60
    too_long = httpx.post(f"{sqlite_auth_server.url}/api/auth/login", json={"token": long_secret})
    assert too_long.status_code == 422 and "s3cr3t" not in too_long.text and too_long.json()["field"] == "token"
    throttled = _login(sqlite_auth_server, "editor")  # even a good token waits once the address is throttled
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0


def test_login_without_auth_says_there_is_nothing_to_sign_in_to(tmp_path) -> None:
    from mloop.config import Settings
    from tests.server.conftest import serve

    for live in serve(Settings.load(home=str(tmp_path), tracking_uri="")):
        answer = httpx.post(f"{live.url}/api/auth/login", json={"token": "anything"})
        assert answer.status_code == 404 and "without authentication" in answer.json()["message"]


def test_a_session_ends_at_its_expiry_and_never_outlives_its_token(tmp_path) -> None:
    from datetime import timedelta

    from mloop.auth import AuthStore
    from mloop.auth.sessions import SessionStore

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    store = AuthStore(url)
    store.add_user("ana")
    short_session = SessionStore(url, hours=0.3 / 3600).open(store.create_token("ana").text)
    short_token = store.create_token("ana", expires_in=timedelta(seconds=0.3))
    tied = SessionStore(url).open(short_token.text)
    assert tied is not None and tied.expires <= _token_expiry(store, short_token.prefix)
    assert SessionStore(url).identity(short_session.secret) is not None
    time.sleep(0.5)
    assert SessionStore(url).identity(short_session.secret) is None
    assert SessionStore(url).identity(tied.secret) is None
    assert tied.secret not in repr(tied) and tied.csrf not in repr(tied)  # never in a log line


def _token_expiry(store, prefix: str) -> int:
    return next(t.expires for t in store.list_tokens("ana") if t.prefix == prefix)
