"""The ``shadow`` and ``canary`` actions: the challenger meets live traffic on every running ``mloop serve``
through the registry's rollout tags (mloop.serving.rollout), which the servers follow at each reload poll while
they keep answering.

- shadow: the challenger gets a copy of the requests; its answers are only logged (role ``shadow``) and set
  beside the champion's: agreement, latency, requests it did not answer. Passes or stops on the declared bounds.
- canary: the challenger answers ``percent`` of the requests for the window; its server errors, latency and (once
  labels arrive) its metric are set beside the champion's; then it is promoted (the alias moves in the
  transaction that marks the action done) or the traffic goes back to the champion.

Restart-safe: the moment the rollout began is recorded before the servers are asked, so a runtime that takes over
after a crash watches the same window, and the promotion's compare-and-set makes a second one impossible.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mloop._util.clock import now_ms
from mloop.automation.actions import Context, Stop, challenger_version
from mloop.automation.live import canary_figures, shadow_figures
from mloop.monitoring.monitor import parse_duration
from mloop.serving.rollout import CANARY_TAG, SHADOW_TAG, rollout_tags

__all__ = ["run_canary", "run_shadow"]

DEFAULT_TIMEOUT = "10m"
POLL_SECONDS = 0.5
DEFAULT_MIN_LABELS = 20


def _registry(ctx: Context) -> Any:
    from mloop.registry import registry_for

    return registry_for(ctx.settings)


def _versions(spec: dict[str, Any], ctx: Context, alias: str = "champion") -> tuple[int, int]:
    challenger = int(challenger_version(ctx, spec.get("challenger")).version)
    champion = int(_registry(ctx).get_alias(ctx.rule.model, alias).version)
    if challenger == champion:
        raise Stop(f"no challenger: v{challenger} of {ctx.rule.model} is already the {alias}")
    return challenger, champion


def _begin(ctx: Context, kind: str, version: int, tags: dict[str, str]) -> int:
    """The moment this rollout began (the one recorded before a crash, when resuming), with the servers asked
    for it through the model's tags."""
    mark = f"{kind}:{version}:"
    if ctx.external_id and ctx.external_id.startswith(mark):
        since = int(ctx.external_id[len(mark):])
    else:
        since = now_ms()
        ctx.record_external(f"{mark}{since}")
    with _registry(ctx).transaction() as tx:
        tx.set_model_tags(ctx.rule.model, tags)
    return since


def _watch(spec: dict[str, Any], since: int, figures: Callable[[int], dict[str, Any]],
           requests: Callable[[dict[str, Any]], int],
           missing: Callable[[dict[str, Any]], str | None] = lambda found: None) -> dict[str, Any]:
    """Poll ``figures(now)`` until the window is over: ``requests`` seen, ``duration`` past (whichever are
    declared) and nothing ``missing`` (labels, say); a window that does not fill within ``timeout`` stops the
    firing, saying what did not come."""
    wanted = spec.get("requests")
    duration = parse_duration(spec["duration"], "duration") if "duration" in spec else 0
    timeout = max(parse_duration(spec.get("timeout", DEFAULT_TIMEOUT), "timeout"), duration)
    while True:
        now = now_ms()
        found = figures(now)
        elapsed = (now - since) / 1000
        short = wanted is not None and requests(found) < wanted
        lacking = missing(found)
        if not short and not lacking and elapsed >= duration:
            return {**found, "seconds": round(elapsed, 1)}
        if elapsed >= timeout:
            what = (f"only {requests(found)} of the {wanted} requests the rollout needs" if short
                    else lacking or "the window")
            raise Stop(f"{what} came in {elapsed:.0f} s (timeout {spec.get('timeout', DEFAULT_TIMEOUT)}); the "
                       "champion stays", details=found)
        time.sleep(POLL_SECONDS)


def _end(ctx: Context, tag: str) -> None:
    with _registry(ctx).transaction() as tx:
        tx.delete_model_tags(ctx.rule.model, [tag])


def run_shadow(spec: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Shadow the challenger, compare it with the champion on the same requests, pass or stop on the bounds."""
    challenger, champion = _versions(spec, ctx)
    since = _begin(ctx, "shadow", challenger, rollout_tags(shadow=challenger))
    tolerance = float(spec.get("tolerance", 0.01))
    try:
        found = _watch(spec, since, lambda now: shadow_figures(ctx.settings, ctx.rule.model, challenger, since, now,
                                                               tolerance), lambda f: int(f["requests"]))
    finally:
        _end(ctx, SHADOW_TAG)
    result = {"challenger_version": challenger, "champion_version": champion, **found}
    problems = _shadow_problems(spec, found)
    if problems:
        raise Stop(f"v{challenger} stays registered, not promoted: as a shadow, {'; '.join(problems)}",
                   details=result)
    return result


def _latency_problem(spec: dict[str, Any], ours: float | None, theirs: float | None) -> list[str]:
    bound = spec.get("max_latency_ratio")
    if bound is None or not ours or theirs is None or theirs <= bound * ours:
        return []
    return [f"its median latency {theirs:.2f} ms is over {bound}x the champion's {ours:.2f} ms"]


def _no_traffic(answered: int) -> list[str]:
    """A window without one answered request is no evidence: never a pass."""
    return [] if answered else ["no request reached it in the window (is an mloop serve of the model's alias "
                                "running, with rollouts on and its prediction log on?)"]


def _shadow_problems(spec: dict[str, Any], found: dict[str, Any]) -> list[str]:
    problems = _no_traffic(found["requests"])
    if "min_agreement" in spec and (found["agreement"] or 0.0) < spec["min_agreement"]:
        problems.append(f"it agreed with the champion on {found['agreement']} of the rows, under "
                        f"{spec['min_agreement']}")
    bound = float(spec.get("max_error_rate", 0.05))
    if found["error_rate"] > bound:
        problems.append(f"it left {found['unanswered']} requests unanswered (rate {found['error_rate']}), over "
                        f"{bound}")
    return problems + _latency_problem(spec, found["latency_ms"]["champion_p50"],
                                       found["latency_ms"]["challenger_p50"])


def run_canary(spec: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Canary the challenger; promote it if its live figures hold against the champion's, else roll back."""
    from mloop.automation.moves import move_in

    alias = spec.get("alias", "champion")
    challenger, champion = _versions(spec, ctx, alias)
    since = _begin(ctx, "canary", challenger, rollout_tags(canary=challenger, percent=float(spec["percent"])))
    metric = spec.get("metric")
    try:
        found = _watch(spec, since, lambda now: canary_figures(ctx.settings, ctx.rule.model, champion, challenger,
                                                               since, now, metric),
                       lambda f: int(f["challenger"]["requests"]), lambda f: _labels_missing(spec, f))
    except Stop as stop:
        _end(ctx, CANARY_TAG)  # the traffic goes back to the champion
        raise Stop(f"v{challenger} rolled back, not promoted: as a canary, {stop.message}",
                   details=stop.details) from None
    except BaseException:
        _end(ctx, CANARY_TAG)
        raise
    result = {"alias": alias, "from": champion, "to": challenger, "challenger_version": challenger,
              "percent": spec["percent"], **found}
    problems = _canary_problems(spec, found, result)
    if problems:
        _end(ctx, CANARY_TAG)
        raise Stop(f"v{challenger} rolled back, not promoted: as a canary, {'; '.join(problems)}", details=result)
    with _registry(ctx).transaction() as tx:  # the alias moves and the canary ends in one commit
        tx.delete_model_tags(ctx.rule.model, [CANARY_TAG])
        move_in(tx, ctx.step, ctx.rule, ctx.firing, result, spec.get("environment"))
    return result


def _labels_missing(spec: dict[str, Any], found: dict[str, Any]) -> str | None:
    """With a declared metric, the labels each arm still lacks: the metric is a condition of the window, so a
    canary is never promoted on figures that do not include it."""
    if spec.get("metric") is None:
        return None
    needed = int(spec.get("min_labels", DEFAULT_MIN_LABELS))
    short = {arm: found[arm].get("labelled", 0) for arm in ("champion", "challenger")
             if found[arm].get("labelled", 0) < needed}
    if not short:
        return None
    counts = ", ".join(f"{count} on the {arm}'s arm" for arm, count in short.items())
    return f"only {counts} of the {needed} labelled predictions (POST /feedback) the {spec['metric']} needs"


def _canary_problems(spec: dict[str, Any], found: dict[str, Any], result: dict[str, Any]) -> list[str]:
    ours, theirs = found["champion"], found["challenger"]
    bound = float(spec.get("max_error_rate", 0.01))
    problems = _no_traffic(theirs["requests"] - theirs["errors"])
    if theirs["error_rate"] > ours["error_rate"] + bound:
        problems.append(f"its server-error rate {theirs['error_rate']} is over the champion's "
                        f"{ours['error_rate']} + {bound}")
    problems += _latency_problem(spec, ours["latency_p50_ms"], theirs["latency_p50_ms"])
    metric = spec.get("metric")
    if metric is None:
        return problems
    from mloop.automation.gate import higher_is_better

    gain = theirs[metric] - ours[metric] if higher_is_better(metric) else ours[metric] - theirs[metric]
    if gain < -float(spec.get("margin", 0.0)):
        problems.append(f"its live {metric} {theirs[metric]} is worse than the champion's {ours[metric]} on "
                        "labelled traffic")
    return problems
