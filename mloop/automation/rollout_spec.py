"""The options of the ``shadow`` and ``canary`` actions and their checks.

    - shadow: {requests: 200, max_error_rate: 0.01, max_latency_ratio: 3, min_agreement: 0.9}
    - canary: {percent: 10, duration: 10m, max_error_rate: 0.01, metric: mae, margin: 0.0}

A shadow watches ``requests`` copied requests (or ``duration``); a canary answers ``percent`` of the traffic for
``duration`` (and at least ``requests`` requests when given); ``timeout`` bounds the wait (default 10 minutes).
"""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidInputError

__all__ = ["ROLLOUT_OPTIONS", "check_rollout"]

_COMMON = {"requests", "duration", "timeout", "max_error_rate", "max_latency_ratio", "challenger"}
ROLLOUT_OPTIONS = {
    "shadow": (set(), _COMMON | {"min_agreement", "tolerance"}),
    "canary": ({"percent"}, _COMMON | {"metric", "margin", "min_labels", "alias", "environment"}),
}
_NUMBERS = ("requests", "max_error_rate", "max_latency_ratio", "min_agreement", "tolerance", "percent", "margin",
            "min_labels")


def check_rollout(kind: str, spec: dict[str, Any], where: str) -> None:
    """Numbers are numbers in range, durations parse, a window is declared, a canary's metric is known."""
    from mloop.automation.gate import SCORES
    from mloop.monitoring.monitor import parse_duration

    for name in _NUMBERS:
        value = spec.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise InvalidInputError(field=f"{where}.{name}", value=value, expected="a number, 0 or more")
    if "requests" not in spec and "duration" not in spec:
        raise InvalidInputError(field=f"{where}.requests", value=None,
                                expected=f"how long to {kind}: requests (a count), duration ('5m'), or both")
    for name in ("duration", "timeout"):
        if name in spec:
            parse_duration(spec[name], f"{where}.{name}")
    if kind == "canary" and not 0 < spec["percent"] < 100:
        raise InvalidInputError(field=f"{where}.percent", value=spec["percent"],
                                expected="the challenger's share of the traffic, between 0 and 100")
    if "min_agreement" in spec and spec["min_agreement"] > 1:
        raise InvalidInputError(field=f"{where}.min_agreement", value=spec["min_agreement"],
                                expected="a share between 0 and 1")
    if "metric" in spec and spec["metric"] not in SCORES:
        raise InvalidInputError(field=f"{where}.metric", value=spec["metric"], expected=f"one of {SCORES}")
