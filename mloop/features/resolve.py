"""Resolving feature references and services into a request: which view versions, which features,
which output names, which on-demand views with which inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mloop.errors import InvalidInputError, NotFoundError
from mloop.features.definitions import OnDemandFeatureView
from mloop.features.plan import OnDemandRequest, Request, ViewRequest
from mloop.features.refs import parse_ref
from mloop.features.registry import Versioned

if TYPE_CHECKING:
    from mloop.features.store import FeatureStore

__all__ = ["resolve_request"]


def resolve_request(store: FeatureStore, features: Sequence[str] | None, service: str | None,
                    full_names: bool) -> Request:
    """Turn references (or a service name, optionally ``"name@version"``) into a resolved request."""
    svc = None
    if service is not None:
        if features:
            raise InvalidInputError(field="features", value=features, expected="either features or service")
        name, _, ver = str(service).partition("@")
        stored = store.registry.get("feature_service", name, int(ver) if ver.isdigit() else None)
        features, svc = stored.spec["features"], (stored.name, stored.version)
    if not features or isinstance(features, str):
        raise InvalidInputError(field="features", value=features,
                                expected="a list of references like ['view:feature'] or service='name'")
    views: dict[str, ViewRequest] = {}
    on_demand: list[OnDemandRequest] = []
    seen: dict[tuple[str, int | None], Versioned | None] = {}  # one registry read per view, not per feature
    for ref in features:
        name, version, feature = parse_ref(ref)
        if (name, version) not in seen:
            seen[(name, version)] = store.registry.find(name, ("feature_view", "on_demand_feature_view"), version)
        found = seen[(name, version)]
        if found is None:
            raise NotFoundError(f"Unknown feature view '{name}' in '{ref}'; known: "
                                f"{sorted(v.name for v in store.registry.list('feature_view'))}", field="features")
        names = [f["name"] for f in found.spec["schema"]]
        wanted = names if feature is None else [feature]
        if feature is not None and feature not in names:
            raise NotFoundError(f"Feature view '{name}' has no feature '{feature}' (it has {names}).",
                                field="features")
        if found.kind == "feature_view":
            req = _view_request(store, views, name, found.version)
            for f in wanted:
                req.hidden.discard(f)
                if f not in req.features:
                    req.features.append(f)
                    req.outputs.append(f"{name}__{f}" if full_names else f)
        else:
            on_demand.append(_on_demand(store, views, found, wanted, full_names))
    request = Request(list(views.values()), on_demand, svc)
    outs = request.outputs
    dupes = sorted({o for o in outs if outs.count(o) > 1})
    if dupes:
        raise InvalidInputError(field="features", value=dupes,
                                expected="distinct feature names across views; pass full_names=True to get "
                                         "'view__feature' columns")
    return request


def _view_request(store: FeatureStore, views: dict[str, ViewRequest], name: str, version: int) -> ViewRequest:
    if name in views:
        if views[name].version != version:
            raise InvalidInputError(field="features", value=name,
                                    expected="one version of each feature view per request")
        return views[name]
    view, version = store.feature_view(name, version)
    keys: list[str] = []
    for e in view.entity_names:
        keys += [k for k in store.entity(e).join_keys if k not in keys]
    views[name] = ViewRequest(view, version, keys=tuple(keys))
    return views[name]


def _on_demand(store: FeatureStore, views: dict[str, ViewRequest], found: Versioned, wanted: list[str],
               full_names: bool) -> OnDemandRequest:
    local = store._local.get(("on_demand_feature_view", found.name))
    if not isinstance(local, OnDemandFeatureView):
        raise InvalidInputError(f"The on-demand view '{found.name}' runs a Python function that lives in the "
                                "feature repository; open the store with FeatureStore(repo=...) to use it.",
                                field="features")
    inputs: dict[str, str] = {}
    for ref in found.spec["inputs"]:
        name, version, feature = parse_ref(ref)
        view_found = store.registry.get("feature_view", name, version)
        req = _view_request(store, views, name, view_found.version)
        for f in [feature] if feature else [x["name"] for x in view_found.spec["schema"]]:
            if f not in req.features:
                req.features.append(f)
                req.outputs.append(f"__in__{name}__{f}")
                req.hidden.add(f)
            inputs[f] = req.outputs[req.features.index(f)]
    outputs = [f"{found.name}__{f}" if full_names else f for f in wanted]
    return OnDemandRequest(local, found.version, wanted, outputs, inputs)
