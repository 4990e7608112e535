"""Webhook secrets at rest: sealed with AES-256-GCM under a server key kept outside the database, so that a dump
or a backup of the database does not reveal them.

Why sealed and not hashed: a receiver checks an HMAC keyed with the shared secret itself, so whoever signs needs
the secret. Storing a digest instead would either change what every receiver verifies with, or the digest would
sign as well as the secret does, so a dump would still let its reader forge deliveries. Sealing keeps the
receiver's side as it is and makes the stored value useless without the key.

The key is the ``secret_key`` setting (``MLOOP_SECRET_KEY``: 32 random bytes as 64 hex digits, e.g. from
``python -c "import secrets; print(secrets.token_hex(32))"``). Every process that shares a database and sends or
adds webhooks (servers, `mloop events deliver`, CLI calls) needs the same key. Without the setting, a key is made
once under the home folder (``keys/webhook-secrets``, readable by its owner only), which serves every process on
one machine with the same home. A value stored before sealing existed is read as it is and sealed again by
``seal_stored``.

>>> key = bytes(32)
>>> sealed = seal("s3cret-value", key)
>>> sealed.startswith(SEALED) and "s3cret" not in sealed, unseal(sealed, key)
(True, 's3cret-value')
"""

from __future__ import annotations

import base64
import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.errors import DataIntegrityError, InvalidInputError

if TYPE_CHECKING:
    from mloop.config import Settings

__all__ = ["SEALED", "is_sealed", "seal", "server_key", "unseal"]

SEALED = "sealed:v1:"  # the stored form: this prefix, then base64url(nonce || ciphertext and tag)
_CONTEXT = b"mloop webhook secret"  # bound into each seal: a value sealed for something else does not open
_NONCE = 12
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


def server_key(settings: Settings) -> bytes:
    """The 32-byte key of ``settings``: the ``secret_key`` setting, else the home folder's own key."""
    if settings.secret_key:
        if not _HEX_KEY.fullmatch(settings.secret_key.strip()):
            raise InvalidInputError(field="secret_key", value="***",
                                    expected="64 hex digits (32 random bytes), e.g. from secrets.token_hex(32)")
        return bytes.fromhex(settings.secret_key.strip())
    return _home_key(str(Path(settings.home, "keys", "webhook-secrets")))


@functools.lru_cache(maxsize=16)
def _home_key(where: str) -> bytes:
    """The key in the file ``where``, made on first use (read once per process: a delivery needs it each time)."""
    path = Path(where)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use that one
            pass
        else:
            with os.fdopen(descriptor, "wb") as out:
                out.write(os.urandom(32))
    key = path.read_bytes()
    if len(key) != 32:
        raise DataIntegrityError(f"The key file {path} holds {len(key)} bytes, not 32; restore it from a backup "
                                 "(webhook secrets sealed with it cannot be read otherwise).", path=str(path))
    return key


def seal(secret: str, key: bytes) -> str:
    """``secret`` sealed under ``key``: what the database stores."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), _CONTEXT)
    return SEALED + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED)


def unseal(stored: str, key: bytes) -> str:
    """The secret in ``stored`` (a value from before sealing is returned as it is).

    DataIntegrityError when ``key`` is not the key it was sealed with, or the value was altered.
    """
    if not is_sealed(stored):
        return stored
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = base64.urlsafe_b64decode(stored[len(SEALED):].encode("ascii"))
        return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], _CONTEXT).decode()
    except (InvalidTag, ValueError) as exc:
        raise DataIntegrityError("A webhook secret does not open with this process's key: every process that "
                                 "shares the database needs the same MLOOP_SECRET_KEY (or home folder key).",
                                 field="secret") from exc
