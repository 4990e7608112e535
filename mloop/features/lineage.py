"""A training set remembers where it came from: the run it was built in records it as a dataset input.

The input's source names the project, the feature views with their versions, the service (when one was asked
for) and the feature references, e.g.
``features://default/trips@2,zones@1?service=eta@3&features=trips:count_1h,zones:area``; the run's tag
``mloop.features.views`` lists the views of every training set it built. ``mloop.registry.lineage`` reads both.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from mloop._util.names import MAX_TEXT
from mloop.features.plan import Request

__all__ = ["parse_source", "record_lineage", "record_training_set", "training_lineage"]

SCHEME = "features"


def record_training_set(data: Any, request: Request, project: str) -> str | None:
    """Record ``data`` as a ``training`` input of the active run (or flow task); the run id, or None outside one.

    >>> import pandas as pd
    >>> record_training_set(pd.DataFrame({"x": [1]}), Request(views=[], on_demand=[]), "default") is None
    True
    """
    return record_lineage(data, training_lineage(request, project))


def training_lineage(request: Request, project: str) -> dict[str, str]:
    """Where a training set came from, as the run records it: its dataset ``name``, ``source`` and ``views``.

    A server builds this beside the training set it computes, so that the client's run records the same input.

    >>> training_lineage(Request(views=[], on_demand=[]), "default")["source"]
    'features://default/?features='
    """
    views = ",".join(f"{n}@{v}" for n, v in sorted(request.lineage().items()))
    refs = [f"{v.view.name}:{f}" for v in request.views for f in v.features if f not in v.hidden]
    refs += [f"{od.view.name}:{f}" for od in request.on_demand for f in od.features]
    query = [f"service={request.service[0]}@{request.service[1]}"] if request.service else []
    source = f"{SCHEME}://{project}/{views}?{'&'.join([*query, 'features=' + ','.join(refs)])}"
    if len(source) > MAX_TEXT:  # hundreds of features: the views and versions still say where the data came from
        source = f"{SCHEME}://{project}/{views}?{'&'.join(query)}"
    name = f"training-set-{request.service[0]}" if request.service else "training-set"
    return {"name": name, "source": source, "views": views}


def record_lineage(data: Any, lineage: dict[str, str]) -> str | None:
    """Record ``data`` in the active run under ``lineage`` (from :func:`training_lineage`); the run id or None.

    >>> import pandas as pd
    >>> record_lineage(pd.DataFrame({"x": [1]}), {"name": "t", "source": "features://default/", "views": ""})
    """
    from mloop.tracking.datasets import log_to_active_run

    views = lineage.get("views", "")
    logged = log_to_active_run(data, name=lineage["name"], context="training", source=lineage["source"],
                               tags={"mloop.features.views": views} if views else None)
    return None if logged is None else logged[0]


def parse_source(source: str) -> dict[str, Any] | None:
    """The project, views (name, version), service and feature references in a training set's source.

    >>> parse_source("features://default/trips@2?service=eta@3&features=trips:count_1h")["views"]
    [{'name': 'trips', 'version': 2}]
    >>> parse_source("file:///data/trips.parquet") is None
    True
    """
    parts = urlsplit(source or "")
    if parts.scheme != SCHEME:
        return None
    views = []
    for item in filter(None, parts.path.lstrip("/").split(",")):
        name, _, version = item.rpartition("@")
        views.append({"name": name, "version": int(version) if version.isdigit() else None})
    query = parse_qs(parts.query)
    service = query.get("service", [""])[0] or None
    features = [f for f in query.get("features", [""])[0].split(",") if f]
    return {"project": parts.netloc, "views": views, "service": service, "features": features}
