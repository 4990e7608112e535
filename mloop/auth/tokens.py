"""API tokens: 256 random bits, shown once, kept only as a sha256 digest.

A token reads ``mlp_<prefix>_<secret>``: the prefix (public, 12 hex) finds its row, the digest of the whole token
proves it. sha256 is right here, not bcrypt: the secret has 256 bits of entropy, so nothing can be guessed from the
digest, and one hash per request costs microseconds.

>>> token = new_token()
>>> split_token(token.text) == token.prefix, len(token.digest)
(True, 64)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

__all__ = ["NewToken", "digest_of", "new_token", "split_token"]

_SHAPE = re.compile(r"mlp_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly made token: ``text`` is given to its owner once and never stored."""

    prefix: str
    text: str
    digest: str

    def __repr__(self) -> str:  # a token in a log or a traceback is a leaked token
        return f"NewToken(prefix={self.prefix!r}, text='***')"


def new_token() -> NewToken:
    """A new random token with its lookup prefix and its digest."""
    prefix = secrets.token_hex(6)
    text = f"mlp_{prefix}_{secrets.token_urlsafe(32)}"
    return NewToken(prefix=prefix, text=text, digest=digest_of(text))


def digest_of(text: str) -> str:
    """The hex sha256 of a token, the only form in which it is stored or cached."""
    return hashlib.sha256(text.encode()).hexdigest()


def split_token(text: str) -> str | None:
    """The prefix of a well-formed token; None for anything else (never looked up)."""
    match = _SHAPE.fullmatch(text or "")
    return match.group(1) if match else None
