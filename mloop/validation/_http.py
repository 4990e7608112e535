"""A model version's training schema and profile through ``mloop server`` (``/api/quality``), for clients with
``MLOOP_TRACKING_URI`` set: they store and read them without database or object-store credentials.

Runs' schemas and profiles need nothing here: they are run artifacts, which the tracking client already moves
through the server.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

import orjson

from mloop.config import Settings
from mloop.registry.entities import ModelVersion

__all__ = ["HttpQuality"]


class HttpQuality:
    """Attach and read a model version's training schema and profile on a server.

    >>> HttpQuality(Settings.load(home="/tmp/mloop-doc", tracking_uri="http://127.0.0.1:1")).base_url
    'http://127.0.0.1:1'
    """

    def __init__(self, settings: Settings) -> None:
        from mloop.tracking._http import HttpTrackingRepository

        self.base_url = settings.tracking_uri.rstrip("/")
        self.api = HttpTrackingRepository(self.base_url)

    def _path(self, name: str, version: int) -> str:
        return f"/quality/models/{quote(name, safe='')}/versions/{int(version)}"

    def attach(self, name: str, version: int, schema: dict[str, Any] | None,
               profile: dict[str, Any] | None) -> ModelVersion:
        """Store ``schema`` and ``profile`` (as ``to_dict()``) for the version; the version as it is now."""
        data = self.api.call("POST", self._path(name, version), {"schema": schema, "profile": profile}, retry=True)
        fields = {f.name for f in dataclasses.fields(ModelVersion)}
        data["aliases"] = tuple(data.get("aliases", ()))
        return ModelVersion(**{k: v for k, v in data.items() if k in fields})

    def stored(self, name: str, version: int, what: str) -> bytes:
        """The stored JSON of the version's training ``what`` ("schema" or "profile"), exactly as written."""
        data = self.api.call("GET", f"{self._path(name, version)}/{what}")
        return data if isinstance(data, bytes) else orjson.dumps(data)  # the client parses JSON answers
