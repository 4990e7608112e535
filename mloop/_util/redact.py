"""Hide secrets in text that mloop prints, logs or answers: URL passwords, object-store keys, secret query values.

>>> redact("postgresql+psycopg://ml:s3cret@db:5432/mloop")
'postgresql+psycopg://ml:***@db:5432/mloop'
>>> redact("s3://AKIAXYZ:abc/def@bucket/runs?token=t0k&region=eu")
's3://***@bucket/runs?token=***&region=eu'
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact"]

MASK = "***"

# Object stores carry access keys, not a user name, in the userinfo: all of it is secret there.
_KEY_SCHEMES = frozenset({"s3", "s3a", "s3n", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2"})

# scheme://userinfo@host ; object-store secrets often hold "/", so the userinfo may too (see _mask_userinfo), and
# database passwords quotes and angle brackets (SQLAlchemy takes them unencoded).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<userinfo>[^\s@]*)@(?=[^\s@/]+)")

# ?key=..., &aws_secret_access_key=..., ;token=... (the name contains one of the secret words)
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&;][A-Za-z0-9_.\-]*(?:key|secret|token|password|passwd|pwd|signature|credential)[A-Za-z0-9_.\-]*=)"
    r"(?P<value>[^&#;\s'\"<>]*)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with every URL password, object-store key pair and secret-looking query value replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text
    return _SECRET_QUERY.sub(_mask_query, _USERINFO.sub(_mask_userinfo, text))


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    if scheme.lower() in _KEY_SCHEMES:
        return f"{scheme}://{MASK}@"
    user, sep, _password = userinfo.partition(":")
    if not sep or "/" in user:  # no password, or an "@" in a path (http://host/a:b@c), not a userinfo
        return match.group(0)
    return f"{scheme}://{user}:{MASK}@"


def _mask_query(match: re.Match[str]) -> str:
    return match["name"] + (MASK if match["value"] else "")
