"""Online stores: the latest feature values per entity, behind one small protocol.

``sqlite:///path/online.db`` (default, in-process) and ``redis://host:port/db``.
"""

from __future__ import annotations

from mloop.errors import InvalidInputError
from mloop.features.online.base import OnlineStore

__all__ = ["OnlineStore", "open_online_store"]


def open_online_store(url: str, namespace: str = "default") -> OnlineStore:
    """The online store for ``url`` (``sqlite:///...`` or ``redis://...``)."""
    if url.startswith("sqlite:///"):
        from mloop.features.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(url[len("sqlite:///"):])
    if url.startswith(("redis://", "rediss://", "unix://")):
        from mloop.features.online.redis import RedisOnlineStore

        return RedisOnlineStore(url, namespace)
    raise InvalidInputError(field="online_url", value=url, expected="sqlite:///path/online.db or redis://host:port/0")
