"""How a receiver knows a delivery is ours: HMAC-SHA256 with the webhook's shared secret.

``X-Mloop-Signature: sha256=<hex>`` signs the raw body (as before); ``X-Mloop-Signature-Timestamped`` signs
``"<X-Mloop-Timestamp>." + body``, so a receiver that also checks the timestamp's age refuses replays.

>>> signature("s3cret-value", b"{}")[:7]
'sha256='
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["signature", "signed_headers"]


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature of ``body`` (with ``timestamp`` in front when given), as ``sha256=<hex>``."""
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The signature headers of one attempt."""
    stamp = int(time.time() if now is None else now)
    return {"X-Mloop-Signature": signature(secret, body), "X-Mloop-Timestamp": str(stamp),
            "X-Mloop-Signature-Timestamped": signature(secret, body, stamp)}
