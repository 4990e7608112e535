"""Experiment tracking: experiments, runs, params, metrics, artifacts, datasets and search.

The names below are resolved on first use, so that importing one light submodule (``entities``, ``env``,
``_tables``) does not pull in pandas and the client.
"""

from __future__ import annotations

from mloop._util.lazy import lazy_getattr

__all__ = [
    "Artifact",
    "Dataset",
    "Experiment",
    "Metric",
    "Run",
    "RunComparison",
    "RunContext",
    "RunStatus",
    "TrackingClient",
]

_LAZY = {
    "Artifact": "mloop.tracking.entities",
    "Dataset": "mloop.tracking.entities",
    "Experiment": "mloop.tracking.entities",
    "Metric": "mloop.tracking.entities",
    "Run": "mloop.tracking.entities",
    "RunStatus": "mloop.tracking.entities",
    "RunComparison": "mloop.tracking.client",
    "TrackingClient": "mloop.tracking.client",
    "RunContext": "mloop.tracking.run",
}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return __all__
