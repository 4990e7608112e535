"""Resolved feature requests: which view versions, which features, under which output names."""

from __future__ import annotations

from dataclasses import dataclass, field

from mloop.features.definitions import FeatureView, OnDemandFeatureView

__all__ = ["OnDemandRequest", "Request", "ViewRequest"]


@dataclass
class ViewRequest:
    """Features read from one version of one feature view (``outputs`` are the result column names)."""

    view: FeatureView
    version: int
    features: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    hidden: set[str] = field(default_factory=set)  # read only as inputs of on-demand views

    @property
    def join_keys(self) -> list[str]:
        return list(self.keys)

    keys: tuple[str, ...] = ()


@dataclass
class OnDemandRequest:
    view: OnDemandFeatureView
    version: int
    features: list[str]
    outputs: list[str]
    input_columns: dict[str, str]  # "view:feature" -> column holding it in the joined frame


@dataclass
class Request:
    """A resolved list of references (or a service): the views to read, then the transforms to run."""

    views: list[ViewRequest]
    on_demand: list[OnDemandRequest]
    service: tuple[str, int] | None = None

    @property
    def entity_keys(self) -> list[str]:
        keys: list[str] = []
        for v in self.views:
            keys += [k for k in v.keys if k not in keys]
        return keys

    @property
    def request_columns(self) -> list[str]:
        cols: list[str] = []
        for o in self.on_demand:
            cols += [f.name for f in o.view.request if f.name not in cols]
        return cols

    @property
    def outputs(self) -> list[str]:
        out = [o for v in self.views for o, f in zip(v.outputs, v.features, strict=True) if f not in v.hidden]
        return out + [o for od in self.on_demand for o in od.outputs]

    def lineage(self) -> dict[str, int]:
        found = {v.view.name: v.version for v in self.views}
        found.update({o.view.name: o.version for o in self.on_demand})
        return found
