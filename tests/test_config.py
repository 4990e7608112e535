"""Settings: explicit arguments win over MLOOP_* variables, which win over mloop.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.config import Settings
from mloop.errors import InvalidInputError


def test_defaults_live_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOOP_HOME")
    settings = Settings.load()
    assert settings.home == str(tmp_path / ".mloop")
    assert settings.db_url == f"sqlite:///{tmp_path}/.mloop/mloop.db"
    assert settings.artifact_root == f"{tmp_path}/.mloop/artifacts"
    assert not settings.remote


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mloop.yaml").write_text("home: from-yaml\nartifact_root: s3://yaml/bucket\nheartbeat_seconds: 3\n")
    monkeypatch.delenv("MLOOP_HOME")
    settings = Settings.load()
    assert settings.home.endswith("from-yaml") and settings.artifact_root == "s3://yaml/bucket"
    assert settings.heartbeat_seconds == 3.0
    monkeypatch.setenv("MLOOP_ARTIFACT_ROOT", "/env/artifacts")
    assert Settings.load().artifact_root == "/env/artifacts"
    assert Settings.load(artifact_root="/explicit").artifact_root == "/explicit"


def test_bad_settings_name_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInputError, match="tracking_uri"):
        Settings.load(tracking_uri="ftp://nope")
    with pytest.raises(InvalidInputError, match="heartbeat_seconds"):
        Settings.load(heartbeat_seconds=-1)
    with pytest.raises(InvalidInputError, match="colour"):
        Settings.load(colour="red")
    (tmp_path / "mloop.yaml").write_text("homme: typo\n")
    with pytest.raises(InvalidInputError, match="homme"):
        Settings.load()
    (tmp_path / "mloop.yaml").write_text("home: [unclosed\n")
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        Settings.load()


def test_bad_database_urls_are_clear(tmp_path: Path) -> None:
    from mloop.store.sql import open_database

    with pytest.raises(InvalidInputError, match="db_url"):
        open_database("mysql://somewhere/db")
    with pytest.raises(InvalidInputError, match="db_url"):
        open_database("not a url")
    with pytest.raises(InvalidInputError, match="SQLite file"):
        open_database("sqlite://")
