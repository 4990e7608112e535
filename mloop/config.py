"""Settings: explicit arguments win over ``MLOOP_*`` environment variables,
which win over an optional ``mloop.yaml``, which wins over the defaults.

>>> s = Settings.load(home="/tmp/mloop-doc")
>>> s.db_url
'sqlite:////tmp/mloop-doc/mloop.db'
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError

__all__ = ["Settings"]

_ENV = {
    "home": "MLOOP_HOME",
    "db_url": "MLOOP_DB_URL",
    "artifact_root": "MLOOP_ARTIFACT_ROOT",
    "max_artifact_bytes": "MLOOP_MAX_ARTIFACT_BYTES",
    "tracking_uri": "MLOOP_TRACKING_URI",
    "online_url": "MLOOP_ONLINE_URL",
    "heartbeat_seconds": "MLOOP_HEARTBEAT_SECONDS",
    "heartbeat_timeout_seconds": "MLOOP_HEARTBEAT_TIMEOUT_SECONDS",
    "user": "MLOOP_USER",
    "max_request_bytes": "MLOOP_MAX_REQUEST_BYTES",
    "allowed_hosts": "MLOOP_ALLOWED_HOSTS",
    "allowed_origins": "MLOOP_ALLOWED_ORIGINS",
    "webhook_allow_hosts": "MLOOP_WEBHOOK_ALLOW_HOSTS",
    "max_future_skew_seconds": "MLOOP_MAX_FUTURE_SKEW_SECONDS",
    "prediction_log_retention_days": "MLOOP_PREDICTION_LOG_RETENTION_DAYS",
    "monitor_every_seconds": "MLOOP_MONITOR_EVERY_SECONDS",
    "auth": "MLOOP_AUTH",
    "direct_artifacts": "MLOOP_DIRECT_ARTIFACTS",
    "secret_key": "MLOOP_SECRET_KEY",
    "feature_source_roots": "MLOOP_FEATURE_SOURCE_ROOTS",
}

# Settings that hold several names: a comma-separated string (environment, CLI) or a YAML list.
_LISTS = ("allowed_hosts", "allowed_origins", "webhook_allow_hosts", "feature_source_roots")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Where mloop keeps its data and how it reaches it."""

    home: str = ".mloop"
    db_url: str = ""
    artifact_root: str = ""
    max_artifact_bytes: int = 4 << 30  # the largest artifact one upload to ``mloop server`` may carry
    tracking_uri: str = ""
    online_url: str = ""
    heartbeat_seconds: float = 10.0
    heartbeat_timeout_seconds: float = 300.0
    user: str = ""
    # The edges of the HTTP servers (mloop server, mloop serve); see mloop/_util/asgi.py.
    max_request_bytes: int = 64 * 1024 * 1024
    allowed_hosts: tuple[str, ...] = ()  # Host header values besides the loopback names and the bound host; "*": any
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed to call the API (CORS); empty: none
    webhook_allow_hosts: tuple[str, ...] = ()  # hosts, IPs or networks webhooks may reach although private
    # how far past now a pushed feature's event time may be (newer wins online: a far-future row would stick)
    max_future_skew_seconds: float = 300.0
    # `mloop gc` deletes the prediction log's (and feedback labels') days older than this; 0 keeps them forever
    prediction_log_retention_days: float = 90.0
    # `mloop server` runs every monitor (and its alert rules) this often; 0: only when asked (CLI, REST)
    monitor_every_seconds: float = 60.0
    # `mloop server` asks every request for a token and checks its roles (see docs/auth.md)
    auth: bool = False
    # with a tracking URI: flows read and write artifact bytes in artifact_root themselves (the client holds the
    # object store's credentials) instead of streaming them through the server
    direct_artifacts: bool = False
    # the key that seals webhook secrets in the database (mloop/events/sealing.py); never shown in a repr
    secret_key: str = dataclasses.field(default="", repr=False)
    # folders (or s3:// prefixes) whose files feature views applied through `mloop server` may read; empty: none
    feature_source_roots: tuple[str, ...] = ()

    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None, **explicit: Any) -> Settings:
        """Resolve settings from arguments, then the environment, then ``mloop.yaml``."""
        unknown = set(explicit) - set(_ENV)
        if unknown:
            raise InvalidInputError(
                field=sorted(unknown)[0], value=explicit[sorted(unknown)[0]],
                expected=f"one of the settings {sorted(_ENV)}",
            )
        values: dict[str, Any] = _from_yaml(config_file)
        for name, env in _ENV.items():
            if os.environ.get(env):
                values[name] = os.environ[env]
        values.update({k: v for k, v in explicit.items() if v is not None})
        return cls._finish(values)

    def export_stores(self) -> None:
        """Put this home, database, artifact root and server URL (or none) into ``os.environ``, so child
        processes and ``Settings.load()`` in this process reach the same stores the same way.

        >>> Settings.load(home="/tmp/mloop-doc").export_stores(); os.environ["MLOOP_HOME"]
        '/tmp/mloop-doc'
        """
        for name in ("home", "db_url", "artifact_root"):
            os.environ[_ENV[name]] = getattr(self, name)
        if self.tracking_uri:
            os.environ[_ENV["tracking_uri"]] = self.tracking_uri
        else:
            os.environ.pop(_ENV["tracking_uri"], None)

    @classmethod
    def _finish(cls, values: dict[str, Any]) -> Settings:
        home = str(Path(values.get("home") or ".mloop").expanduser().absolute())
        for name in ("heartbeat_seconds", "heartbeat_timeout_seconds", "max_future_skew_seconds"):
            if name in values:
                values[name] = _positive_float(name, values[name])
        if "monitor_every_seconds" in values:
            values["monitor_every_seconds"] = _seconds_or_off("monitor_every_seconds", values["monitor_every_seconds"])
        if "prediction_log_retention_days" in values:
            values["prediction_log_retention_days"] = check_retention_days(values["prediction_log_retention_days"])
        for name in ("auth", "direct_artifacts"):
            if name in values:
                values[name] = _flag(name, values[name])
        for name in ("max_request_bytes", "max_artifact_bytes"):
            if name in values:
                values[name] = _positive_int(name, values[name])
        for name in _LISTS:
            if name in values:
                values[name] = _names(name, values[name])
        values["home"] = home
        values["db_url"] = values.get("db_url") or f"sqlite:///{home}/mloop.db"
        values["artifact_root"] = values.get("artifact_root") or f"{home}/artifacts"
        values["online_url"] = values.get("online_url") or f"sqlite:///{home}/online.db"
        values["user"] = values.get("user") or _current_user()
        tracking_uri = str(values.get("tracking_uri") or "")
        if tracking_uri and not tracking_uri.startswith(("http://", "https://")):
            raise InvalidInputError(
                field="tracking_uri", value=tracking_uri,
                expected="an http:// or https:// URL of an mloop server (or empty for direct store access)",
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in fields})

    @property
    def remote(self) -> bool:
        """True when runs go through an mloop server instead of the stores directly."""
        return bool(self.tracking_uri)


def _from_yaml(config_file: str | os.PathLike[str] | None) -> dict[str, Any]:
    path = Path(config_file or os.environ.get("MLOOP_CONFIG") or "mloop.yaml")
    if not path.is_file():
        if config_file is not None:
            raise InvalidInputError(field="config_file", value=str(path), expected="an existing YAML file")
        return {}
    import yaml  # only with a file to read: its import is a good part of a short command's start

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path} is not valid YAML: {exc}", field="config_file") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(field=str(path), value=data, expected="a mapping of setting: value")
    unknown = set(data) - set(_ENV)
    if unknown:
        key = sorted(unknown)[0]
        raise InvalidInputError(field=f"{path}:{key}", value=data[key], expected=f"one of {sorted(_ENV)}")
    return dict(data)


def _positive_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0:
        raise InvalidInputError(field=name, value=value, expected="a positive number of seconds")
    return number


def _seconds_or_off(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0 <= number <= 86_400 or isinstance(value, bool):
        raise InvalidInputError(field=name, value=value, expected="a number of seconds from 0 (off) to 86400")
    return number


MAX_RETENTION_DAYS = 100_000  # about 270 years: "now minus the retention" must stay a date


def check_retention_days(value: Any, field: str = "prediction_log_retention_days") -> float:
    """A retention in days: 0 (keep everything) up to MAX_RETENTION_DAYS."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0 <= number <= MAX_RETENTION_DAYS or isinstance(value, bool):
        raise InvalidInputError(field=field, value=value, expected=f"a number of days from 0 to {MAX_RETENTION_DAYS:,} "
                                "(0 keeps the prediction log forever)")
    return number


def _flag(name: str, value: Any) -> bool:
    text = str(value).strip().lower()
    if isinstance(value, bool) or text in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        return value if isinstance(value, bool) else text in ("true", "1", "yes", "on")
    raise InvalidInputError(field=name, value=value, expected="true or false")


def _positive_int(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0 or isinstance(value, bool):
        raise InvalidInputError(field=name, value=value, expected="a positive whole number of bytes")
    return number


def _names(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(field=name, value=value, expected="a comma-separated string or a list of names")
    return tuple(v.strip() for v in value if v.strip())


def _current_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "unknown"
