"""Checks a set of definitions before apply: unknown entities, missing columns, type mismatches.

Every problem names the definition and the column; all problems are reported at once.
"""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidInputError, MloopError
from mloop.features.definitions import Definition, Entity, FeatureService, FeatureView, OnDemandFeatureView
from mloop.features.refs import parse_ref
from mloop.features.registry import FeatureRegistry

__all__ = ["DefinitionError", "validate_definitions"]


class DefinitionError(InvalidInputError):
    """Definitions that cannot be applied; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the feature definitions:\n{lines}", field="definitions")


def validate_definitions(definitions: list[Definition], registry: FeatureRegistry, con: Any) -> None:
    """Raise DefinitionError listing every problem in ``definitions`` (checked against the registry too)."""
    problems: list[str] = []
    entities = {d.name: d for d in definitions if isinstance(d, Entity)}
    for v in registry.list("entity"):
        entities.setdefault(v.name, Entity.from_spec(v.spec))
    views: dict[str, list[str]] = {v.name: [f["name"] for f in v.spec["schema"]]
                                   for v in registry.list("feature_view") + registry.list("on_demand_feature_view")}
    for d in definitions:
        if isinstance(d, FeatureView | OnDemandFeatureView):
            views[d.name] = d.feature_names
    for d in definitions:
        if isinstance(d, FeatureView):
            problems += _check_view(d, entities, con)
        elif isinstance(d, OnDemandFeatureView):
            problems += _check_refs(f"on-demand view '{d.name}'", d.inputs, views)
        elif isinstance(d, FeatureService):
            problems += _check_refs(f"feature service '{d.name}'", d.features, views)
    if problems:
        raise DefinitionError(problems)


def _check_view(view: FeatureView, entities: dict[str, Entity], con: Any) -> list[str]:
    where = f"feature view '{view.name}'"
    problems = [f"{where}: unknown entity '{e}' (known entities: {sorted(entities) or 'none'})"
                for e in view.entity_names if e not in entities]
    try:
        columns = view.source.columns(con)
    except MloopError as exc:
        return problems + [f"{where}: its source cannot be read: {exc.message}"]
    except Exception as exc:  # DuckDB parse/IO errors
        return problems + [f"{where}: its source cannot be read: {str(exc).splitlines()[0]}"]
    available = f"(the source has: {', '.join(sorted(columns))})"
    for e in view.entity_names:
        for key in entities[e].join_keys if e in entities else []:
            if key not in columns:
                problems.append(f"{where}: join key '{key}' of entity '{e}' is missing in the source {available}")
        if e in entities:
            for key, kind in zip(entities[e].join_keys, entities[e].key_types, strict=True):
                if kind is not None and key in columns and not kind.accepts(columns[key]):
                    problems.append(f"{where}: join key '{key}' of entity '{e}' is declared {kind.name} but the "
                                    f"source column is {columns[key]}")
    for label, col in (("event timestamp", view.timestamp), ("created timestamp", view.created_timestamp)):
        if col is None:
            continue
        if col not in columns:
            problems.append(f"{where}: {label} column '{col}' is missing in the source {available}")
        elif not columns[col].upper().startswith("TIMESTAMP"):
            problems.append(f"{where}: {label} column '{col}' has type {columns[col]}, expected a timestamp")
        elif columns[col].upper() in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S") and \
                not view.timezone:
            problems.append(f"{where}: {label} column '{col}' has no time zone; store aware UTC timestamps or "
                            "set timezone='UTC' (or the zone they are in) on the feature view")
    for f in view.schema:
        if f.name not in columns:
            problems.append(f"{where}: feature '{f.name}' is missing in the source {available}")
        elif not f.dtype.accepts(columns[f.name]):
            problems.append(f"{where}: feature '{f.name}' is declared {f.dtype.name} but the source column is "
                            f"{columns[f.name]}")
    return problems


def _check_refs(where: str, refs: Any, views: dict[str, list[str]]) -> list[str]:
    problems = []
    for ref in refs:
        try:
            view, _, feature = parse_ref(ref)
        except InvalidInputError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        if view not in views:
            problems.append(f"{where}: unknown feature view '{view}' in '{ref}' (known: {sorted(views) or 'none'})")
        elif feature is not None and feature not in views[view]:
            problems.append(f"{where}: view '{view}' has no feature '{feature}' (it has: {', '.join(views[view])})")
    return problems
