"""Rollouts the registry asks for: a shadow version that gets a copy of the traffic, and a canary version that
answers a share of it, declared as two tags on the registered model and followed by every running server.

``serving.shadow = "<version>"`` and ``serving.canary = "<version>:<percent>"`` (set and cleared by automation's
shadow and canary actions, or by hand with ``mloop models update``). A server whose endpoint serves a
``models:/<name>@<alias>`` URI without an A/B or shadow option of its own reads them at each reload poll and
swaps the arms in place: requests keep being answered by the arms they picked, none fails.

>>> rollout_tags(shadow=7)
{'serving.shadow': '7'}
>>> read_rollout({"serving.canary": "8:10"})
Rollout(shadow=None, canary=8, percent=10.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mloop.errors import InvalidInputError

__all__ = ["CANARY_TAG", "SHADOW_TAG", "Rollout", "apply_rollout", "follows_rollouts", "read_rollout",
           "rollout_tags"]

SHADOW_TAG = "serving.shadow"
CANARY_TAG = "serving.canary"


@dataclass(frozen=True, slots=True)
class Rollout:
    shadow: int | None = None
    canary: int | None = None
    percent: float = 0.0


def rollout_tags(shadow: int | None = None, canary: int | None = None, percent: float = 0.0) -> dict[str, str]:
    """The model tags that ask servers for this rollout."""
    if canary is not None and not 0 < percent < 100:
        raise InvalidInputError(field="percent", value=percent, expected="a share of traffic between 0 and 100")
    tags = {} if shadow is None else {SHADOW_TAG: str(int(shadow))}
    if canary is not None:
        tags[CANARY_TAG] = f"{int(canary)}:{percent:g}"
    return tags


def read_rollout(tags: dict[str, Any]) -> Rollout:
    """The rollout a model's tags ask for; a malformed tag counts as absent (a server keeps serving)."""
    shadow = str(tags.get(SHADOW_TAG, ""))
    canary, _, percent = str(tags.get(CANARY_TAG, "")).partition(":")
    try:
        share = float(percent) if canary.isdigit() else 0.0
    except ValueError:
        share = 0.0
    return Rollout(shadow=int(shadow) if shadow.isdigit() else None,
                   canary=int(canary) if canary.isdigit() and 0 < share < 100 else None,
                   percent=share if canary.isdigit() and 0 < share < 100 else 0.0)


def follows_rollouts(config: Any) -> bool:
    """An endpoint follows the registry's rollouts when it serves a moving registry URI and its operator did
    not route it by hand (``--ab``/``--shadow`` win)."""
    return bool(config.rollouts and config.uri.startswith("models:/") and "@" in config.uri
                and not config.ab and not config.shadow)


def apply_rollout(endpoint: Any, rollout: Rollout, load: Any) -> list[str]:
    """Bring ``endpoint``'s shadow and canary arms to ``rollout`` (versions of the registered model it serves);
    ``load(uri)`` loads and warms a version. Returns what changed, one line each; a version that cannot answer
    is not swapped in."""
    changed = []
    current = endpoint.rollout
    name, cfg, metrics = endpoint.name, endpoint.config, endpoint.metrics
    model = endpoint.primary.model.name  # the registry's name; the endpoint's may differ (--name)
    if rollout.shadow != current.shadow:
        arm = None
        if rollout.shadow is not None:
            uri = f"models:/{model}/{rollout.shadow}"
            arm = _arm(load, uri, "shadow", 0.0, type(cfg)(name=name, uri=uri), metrics, name, changed)
        if arm is not None or rollout.shadow is None:
            endpoint.set_shadow(arm)
            changed.append(f"{name} shadow: {'off' if arm is None else 'v' + arm.model.version}")
    if (rollout.canary, rollout.percent) != (current.canary, current.percent):
        arms = [endpoint.primary]
        if rollout.canary is not None:
            arm = _arm(load, f"models:/{model}/{rollout.canary}", "canary", rollout.percent / 100, cfg, metrics,
                       name, changed)
            arms += [arm] if arm is not None else []
        if len(arms) > 1 or rollout.canary is None:
            endpoint.primary.weight = 1.0 - sum(a.weight for a in arms[1:])
            endpoint.set_arms(arms)
            changed.append(f"{name} canary: " + (f"v{arms[1].model.version} at {rollout.percent:g}%"
                                                  if len(arms) > 1 else "off"))
    endpoint.rollout = Rollout(endpoint.shadow and int(endpoint.shadow.model.version),
                               int(endpoint.arms[1].model.version) if len(endpoint.arms) > 1 else None,
                               rollout.percent if len(endpoint.arms) > 1 else 0.0)
    return changed


def _arm(load: Any, uri: str, role: str, weight: float, cfg: Any, metrics: Any, name: str,
         changed: list[str]) -> Any:
    from mloop.serving.routing import Arm

    model = load(uri)
    if model.not_ready is not None:
        metrics.event(name, "reload_failed")
        changed.append(f"{name} {role}: v{model.version} not started, it cannot answer: {model.not_ready}")
        return None
    return Arm(role, uri, model, weight, cfg, metrics, name)
