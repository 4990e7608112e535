"""Features for a model server: a request carrying entity keys (and request values) gets the model's features.

``serving_lookup(store, service)`` compiles the service's serving plan once and returns a function
``(columns, n) -> columns`` for the request path: it reads the online store, runs the on-demand
transforms exactly as ``training_set`` does, and adds the features to the request's columns.
A request that already carries every feature is passed through unchanged. A missing entity key,
an entity absent from the online store or expired (older than its view's TTL) raises
``FeatureLookupError`` whose ``errors`` name the key and value (the server answers 422).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInputError
from mloop.features.serving import AFTER_AS_OF, NOT_FOUND, PRESENT, ServingPlan
from mloop.features.types import INT_RANGES, Bool, DType, String, key_expected, key_fits

if TYPE_CHECKING:
    from mloop.features.definitions import FeatureView
    from mloop.features.store import FeatureStore
    from mloop.registry.signature import FieldError

__all__ = ["FeatureLookupError", "check_entity_keys", "entity_key_types", "key_checker", "keys_surely_fit",
           "plan_key_types", "serving_lookup"]

Columns = dict[str, list[Any]]


class FeatureLookupError(InvalidInputError):
    """The request's entities could not be turned into features; ``errors`` lists every field's problem."""

    def __init__(self, errors: list[FieldError]) -> None:
        first = errors[0]
        super().__init__(first.message, field=first.field, value=first.value, expected=first.expected)
        self.errors = errors


def _error(field: str, expected: str, value: Any, row: int | None, message: str) -> FieldError:
    from mloop.registry.signature import FieldError

    return FieldError(field=field, expected=expected, value=value, row=row, message=message)


KeyTypes = dict[str, tuple[str, DType]]


def plan_key_types(store: FeatureStore, plan: ServingPlan) -> KeyTypes:
    """The declared key types of a compiled plan's entities, read from the registry once per plan."""
    if plan.key_types is None:
        plan.key_types = entity_key_types(store, [v.view for v in plan.request.views])
    return plan.key_types


def entity_key_types(store: FeatureStore, views: Sequence[FeatureView]) -> KeyTypes:
    """``{join key: (entity name, declared type)}`` of the entities of ``views`` (keys without a type left out)."""
    out: KeyTypes = {}
    for view in views:
        for name in view.entity_names:
            entity = store.entity(name)
            for key, kind in zip(entity.join_keys, entity.key_types, strict=True):
                if kind is not None:
                    out.setdefault(key, (name, kind))
    return out


def key_checker(types: KeyTypes) -> Callable[[Any], None]:
    """``check_entity_keys`` for ``types``, compiled once per serving plan (see ``keys_surely_fit``)."""
    surely_fit = keys_surely_fit(types)

    def check(entities: Any) -> None:
        if not surely_fit(entities):
            check_entity_keys(types, entities)

    return check


def keys_surely_fit(types: KeyTypes) -> Callable[[Any], bool]:
    """A fast test, compiled once, that is True only when every entity key fits its declared type.

    Columns of plain ``int`` (within the declared range), ``str`` or ``bool`` values pass after a few
    C-level passes (``set(map(type, ...))``, ``min``, ``max``). False means "not sure" (records, NumPy
    integers, a wrong value): ``wrong_keys`` or ``check_entity_keys`` then have the last word.
    """
    fast: list[tuple[str, type, int | None, int | None]] = []
    for key, (_, kind) in types.items():
        if kind.name in INT_RANGES:
            fast.append((key, int, *INT_RANGES[kind.name]))
        elif kind is String or kind is Bool:
            fast.append((key, str if kind is String else bool, None, None))
        else:
            return lambda entities: False

    def surely_fit(entities: Any) -> bool:
        if type(entities) is not dict:
            return False
        for key, kind, low, high in fast:
            col = entities.get(key)
            if type(col) is not list or (col and (set(map(type, col)) != {kind} or (
                    low is not None and (min(col) < low or max(col) > high)))):  # type: ignore[operator]
                return False
        return True

    return surely_fit


def check_entity_keys(types: KeyTypes, entities: Any, field: str = "entities") -> None:
    """InvalidInputError naming the first entity key value that does not fit its entity's declared type.

    ``entities`` is ``{key: [values]}`` or records; other shapes are left for the reader to refuse.
    A key of the wrong type would only miss (or, on a push, be stored under a key no lookup finds).
    """
    records = isinstance(entities, list)
    for key, row, value, expected in wrong_keys(types, entities):
        raise InvalidInputError(field=f"{field}[{row}].{key}" if records else f"{field}.{key}[{row}]",
                                value=_short(value), expected=expected)


def wrong_keys(types: KeyTypes, entities: Any) -> Iterator[tuple[str, int, Any, str]]:
    """(key, row, value, what was expected) for each entity key value of the wrong type."""
    for key, (entity, kind) in types.items():
        if isinstance(entities, dict):
            values = entities.get(key)
        elif isinstance(entities, list):
            values = [r.get(key) for r in entities if isinstance(r, dict)]
        else:
            return
        if not isinstance(values, list | tuple):
            continue  # absent: the reader names the missing key
        for row, value in enumerate(values):
            if not key_fits(kind, value):
                yield key, row, value, key_expected(kind, entity)


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 60 else text[:60] + "..."


def serving_lookup(store: FeatureStore, service: str, *,
                   model_columns: Sequence[str] | None = None) -> Callable[[Columns, int], Columns]:
    """The request-path lookup of feature service ``service`` (``model_columns``: the model's inputs)."""
    plan = store.serving_plan(service=service)
    wanted = set(model_columns) if model_columns is not None else None
    outputs = [o for o in plan.outputs if wanted is None or o in wanted]
    presence = copy.copy(plan)  # the same reads without transforms: which entities are missing
    presence.on_demand, presence.hidden = [], set()
    types = plan_key_types(store, plan)
    surely_fit = keys_surely_fit(types)

    def lookup(columns: Columns, n: int) -> Columns:
        if outputs and all(o in columns for o in outputs):
            return columns  # the caller sent the features themselves
        need = [*plan.entity_keys, *plan.request_columns]
        absent = [k for k in need if k not in columns]
        if absent:
            raise FeatureLookupError([
                _error(k, f"the entity key or request value '{k}' of feature service '{service}'", None, None,
                       f"'{k}' is missing: feature service '{service}' needs {need} (or every feature {outputs})")
                for k in absent])
        entities = {k: columns[k] for k in plan.entity_keys}
        if not surely_fit(entities):
            wrong = [_error(key, expected, _short(value), row, f"{key}={_short(value)!r} (row {row}): "
                                                                f"expected {expected}")
                     for key, row, value, expected in wrong_keys(types, entities)]
            if wrong:
                raise FeatureLookupError(wrong)
        request = {k: columns[k] for k in plan.request_columns}
        try:
            result = plan.read(entities, request)
        except InvalidInputError as exc:
            raise FeatureLookupError([_error(exc.field or "entities", exc.expected or "valid entities", exc.value,
                                             None, str(exc))]) from exc
        except Exception as exc:  # a transform that fails on a missing feature: say which entity is missing
            _missing(presence.read(entities, request), presence, entities, service)
            raise FeatureLookupError([_error("features", "inputs the on-demand transforms accept", None, None,
                                             f"an on-demand transform of '{service}' failed: {exc}")]) from exc
        _missing(result, plan, entities, service)
        return {**columns, **result.values}

    return lookup


def _missing(result: Any, plan: ServingPlan, entities: Columns, service: str) -> None:
    errors: list[FieldError] = []
    for group in plan.groups:
        for row, status in enumerate(result.status.get(group.view, ())):
            if status == PRESENT:
                continue
            value = entities[group.keys[0]][row] if len(group.keys) == 1 else {k: entities[k][row] for k in group.keys}
            field = group.keys[0] if len(group.keys) == 1 else ",".join(group.keys)
            why = {NOT_FOUND: "not in the online store",
                   AFTER_AS_OF: "only a value newer than the time asked for is online"}.get(
                status, "expired (older than the view's TTL)")
            errors.append(_error(field, f"an entity with fresh features in view '{group.view}'", value, row,
                                 f"{field}={value!r} (row {row}): {why} for feature view '{group.view}' "
                                 f"of service '{service}'"))
    if errors:
        raise FeatureLookupError(errors)
