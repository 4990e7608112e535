"""The client's token: ``MLOOP_TOKEN``, else the one `mloop login` stored for the server's URL.

Stored tokens live in ``$XDG_CONFIG_HOME/mloop/credentials.json`` (default ``~/.config/mloop``), a file only its
owner may read (0600), one token per server URL.

>>> import os; os.environ["MLOOP_TOKEN"] = "mlp_x"; token_for("http://team:5000")
'mlp_x'
>>> del os.environ["MLOOP_TOKEN"]
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mloop.errors import InvalidInputError

__all__ = ["credentials_file", "save_token", "token_for"]


def credentials_file() -> Path:
    """Where `mloop login` keeps tokens."""
    root = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(root) / "mloop" / "credentials.json"


def token_for(server_url: str) -> str | None:
    """The token to send to ``server_url``: ``MLOOP_TOKEN`` wins, then the stored one, else None."""
    if os.environ.get("MLOOP_TOKEN"):
        return os.environ["MLOOP_TOKEN"].strip()
    return _read().get(_key(server_url))


def save_token(server_url: str, token: str) -> Path:
    """Store ``token`` for ``server_url`` in a file only the user can read; returns the file."""
    path = credentials_file()
    tokens = _read()
    tokens[_key(server_url)] = token
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(tokens, out, indent=1)
    os.chmod(temporary, 0o600)  # an existing file keeps its mode through O_CREAT
    os.replace(temporary, path)
    return path


def _key(server_url: str) -> str:
    url = server_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise InvalidInputError(field="server", value=server_url, expected="an http:// or https:// URL")
    return url


def _read() -> dict[str, str]:
    path = credentials_file()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(data, dict) else {}
