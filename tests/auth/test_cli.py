"""`mloop auth`, `mloop login` and `mloop server`'s refusal to open up without auth."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mloop.auth import AuthStore
from mloop.auth.credentials import credentials_file, token_for
from mloop.cli import _register, app
from mloop.errors import AuthenticationError, InvalidInputError
from tests.auth.conftest import AuthServer

_register()


def run(*args: str) -> tuple[str, str, BaseException | None]:
    result = CliRunner().invoke(app, list(args))
    return result.stdout, result.stderr, result.exception if result.exit_code else None


def test_a_token_is_printed_once_and_never_listed(home: Path) -> None:
    assert run("auth", "users", "add", "ana")[2] is None
    out, err, failed = run("auth", "tokens", "create", "ci-bot", "--service-account", "--expires", "30d")
    assert failed is None and "not shown again" in err
    token = out.strip()
    store = AuthStore(f"sqlite:///{home}/mloop.db")
    identity = store.authenticate(token)
    assert identity is not None and identity.kind == "service"
    listed, _, _ = run("auth", "tokens", "list")
    assert token.split("_")[1] in listed and token not in listed and token.split("_")[2] not in listed
    assert run("auth", "grant", "ci-bot", "default", "editor")[2] is None
    assert "default: editor" in run("auth", "users", "list")[0]
    assert run("auth", "tokens", "revoke", token.split("_")[1])[2] is None
    assert store.authenticate(token) is None
    assert isinstance(run("auth", "grant", "ana", "default", "owner")[2], InvalidInputError)
    assert isinstance(run("auth", "tokens", "create", "ana", "--expires", "soon")[2], InvalidInputError)


def test_login_keeps_the_token_for_its_owner_only(sqlite_auth_server: AuthServer, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    url = sqlite_auth_server.url
    assert isinstance(run("login", "--server", url, "--token", "mlp_0123456789ab_" + "x" * 43)[2],
                      AuthenticationError)
    assert not credentials_file().exists()
    token = sqlite_auth_server.tokens["viewer"]
    out, _, failed = run("login", "--server", url + "/", "--token", token)
    assert failed is None and "as 'viewer'" in out and token not in out
    assert stat.S_IMODE(os.stat(credentials_file()).st_mode) == 0o600
    assert token_for(url) == token
    monkeypatch.setenv("MLOOP_TOKEN", "mlp_from_env")
    assert token_for(url) == "mlp_from_env"


def test_the_server_refuses_to_open_up_without_auth(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mloop", "server", "--host", "0.0.0.0", "--home", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--insecure-no-auth" in done.stderr and "--auth" in done.stderr
    assert "mloop server on" not in done.stdout
    from mloop.cli.server import refuse_open_without_auth

    refuse_open_without_auth("0.0.0.0", auth=True, insecure=False)  # with auth it may listen anywhere
    refuse_open_without_auth("127.0.0.1", auth=False, insecure=False)  # and without, on loopback
    with pytest.raises(InvalidInputError, match="--insecure-no-auth"):
        refuse_open_without_auth("10.1.2.3", auth=False, insecure=False)


def test_the_auth_setting_is_a_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.config import Settings

    assert Settings.load().auth is False
    monkeypatch.setenv("MLOOP_AUTH", "true")
    assert Settings.load().auth is True
    with pytest.raises(InvalidInputError, match="auth: got 'maybe', expected true or false"):
        Settings.load(auth="maybe")
