"""What to serve and how: one ``EndpointConfig`` per model name, gathered in a ``ServeConfig``.

Both are plain frozen dataclasses that travel to uvicorn's worker processes as JSON.

>>> cfg = ServeConfig(endpoints=(EndpointConfig(name="eta", uri="models:/eta@champion",
...                                             ab=(("models:/eta@challenger", 0.1),)),))
>>> ServeConfig.from_json(cfg.to_json()) == cfg
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from mloop.errors import InvalidInputError

__all__ = ["EndpointConfig", "ServeConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfig:
    """One served name.

    ``uri`` is the primary version; ``ab`` lists other versions with their share of the
    traffic (the primary gets the rest), chosen by a hash of the request key so a key
    always meets the same version; ``shadow`` gets a copy of every request whose answers
    are only logged. ``max_batch_size`` > 1 turns micro-batching on. ``cache_ttl`` > 0
    caches predictions by input. ``timeout_ms`` > 0 bounds each model call; after
    ``breaker_failures`` failures in a row the breaker opens for ``breaker_reset`` seconds
    and ``fallback`` (one JSON value per row) answers instead of the model. ``rollouts`` lets the registry's
    shadow and canary tags route an alias-served endpoint that has no ``ab`` or ``shadow`` of its own.
    """

    name: str
    uri: str
    ab: tuple[tuple[str, float], ...] = ()
    shadow: str | None = None
    sticky_field: str | None = None
    max_batch_size: int = 1
    max_wait_ms: float = 2.0
    cache_ttl: float = 0.0
    cache_entries: int = 100_000
    timeout_ms: float = 0.0
    fallback: Any = None
    breaker_failures: int = 5
    breaker_reset: float = 10.0
    log: bool = True
    rollouts: bool = True  # follow the registry's shadow and canary tags (mloop.serving.rollout)

    def __post_init__(self) -> None:
        total = sum(w for _, w in self.ab)
        if any(not 0 < w < 1 for _, w in self.ab) or total >= 1:
            raise InvalidInputError(field="ab", value=list(self.ab),
                                    expected="weights between 0 and 1 that add up to less than 1 "
                                             "(the primary version gets the rest)")
        if self.max_batch_size < 1:
            raise InvalidInputError(field="max_batch_size", value=self.max_batch_size, expected="1 or more")
        for name in ("max_wait_ms", "cache_ttl", "timeout_ms", "breaker_reset"):
            if getattr(self, name) < 0:
                raise InvalidInputError(field=name, value=getattr(self, name), expected="0 or more")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """Every endpoint of one server, the registry poll period (0 turns hot reload off) and trust."""

    endpoints: tuple[EndpointConfig, ...]
    reload_seconds: float = 5.0
    # True: the models' author is trusted; names: types and functions allowed besides mloop's list (load_model's)
    trusted: bool | tuple[str, ...] = False
    log_flush_seconds: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise InvalidInputError(field="endpoints", value=[], expected="at least one model to serve")
        if not isinstance(self.trusted, bool):
            from mloop.registry.flavors._trust import normalize

            object.__setattr__(self, "trusted", tuple(sorted(normalize(self.trusted))))
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise InvalidInputError(field="endpoints", value=names, expected="distinct model names")

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data = orjson.loads(text)
        endpoints = tuple(EndpointConfig(**{**e, "ab": tuple(tuple(a) for a in e.get("ab") or ())})
                          for e in data.pop("endpoints"))
        return cls(endpoints=endpoints, **data)
