"""The actions a rule runs, in order: ``run_flow``, ``evaluate`` (the gate), ``promote``, ``rollback``,
``notify``. Each returns its result as a dict; ``Stop`` ends the firing early with a reason (a losing challenger).

An action that starts something outside the database records how to find it first (a flow run's tag), so a
runtime that died mid-action finds it again instead of starting a second one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mloop.automation._options import check_options
from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError

__all__ = ["Stop", "check_action", "run_action"]

_OPTIONS = {
    "run_flow": ({"file"}, {"parameters", "flow"}),
    "evaluate": ({"metric"}, {"holdout", "target", "traffic", "min_rows", "margin", "max_latency_ms", "champion",
                               "slices", "max_slice_gap"}),
    "promote": (set(), {"alias", "environment"}),
    "rollback": (set(), {"alias"}),
    "notify": (set(), {"message"}),
}


class Stop(MloopError):
    """The firing ends here, by design (not a failure): the reason is recorded and shown."""


@dataclass
class Context:
    """What an action sees: the firing, its rule, the results of the actions before it."""

    settings: Settings
    firing: dict[str, Any]
    rule: Any
    position: int
    earlier: dict[str, dict[str, Any]]  # kind -> result of the last action of that kind so far
    record_external: Any  # callable(str): store the id of what this action is about to start


def check_action(kind: str, spec: dict[str, Any], where: str) -> dict[str, Any]:
    """``spec`` of one action, with its required and known options checked."""
    required, optional = _OPTIONS[kind]
    spec = check_options(spec, required, optional, where, kind,
                         numbers=("margin", "max_latency_ms", "min_rows", "max_slice_gap"))
    if "parameters" in spec and not isinstance(spec["parameters"], dict):
        raise InvalidInputError(field=f"{where}.parameters", value=spec["parameters"], expected="a mapping")
    if kind == "evaluate":
        _check_evaluate(spec, where)
    return dict(spec)


def _check_evaluate(spec: dict[str, Any], where: str) -> None:
    """The gate's data sets and bounds: a holdout (with its target) and/or recent traffic; slices need both."""
    from mloop.automation.gate import SCORES

    if spec["metric"] not in SCORES:
        raise InvalidInputError(field=f"{where}.metric", value=spec["metric"], expected=f"one of {SCORES}")
    if "holdout" not in spec and "traffic" not in spec:
        raise InvalidInputError(field=f"{where}.holdout", value=None,
                                expected="a holdout Parquet path (with target), recent traffic ('7d'), or both")
    if "holdout" in spec and "target" not in spec:
        raise InvalidInputError(field=f"{where}.target", value=None, expected="the holdout's label column")
    if ("slices" in spec) != ("max_slice_gap" in spec) or ("slices" in spec and "holdout" not in spec):
        raise InvalidInputError(field=f"{where}.slices", value=spec.get("slices"),
                                expected="slices (columns of the holdout) with max_slice_gap, and a holdout")
    if "slices" in spec and (not isinstance(spec["slices"], list) or not spec["slices"]
                             or not all(isinstance(c, str) for c in spec["slices"])):
        raise InvalidInputError(field=f"{where}.slices", value=spec["slices"], expected="a list of column names")
    if "traffic" in spec:
        from mloop.monitoring.monitor import parse_duration

        parse_duration(spec["traffic"], f"{where}.traffic")


def run_action(kind: str, spec: dict[str, Any], ctx: Context) -> dict[str, Any]:
    return _RUNNERS[kind](spec, ctx)


def _run_flow(spec: dict[str, Any], ctx: Context) -> dict[str, Any]:
    from mloop.flows.client import list_runs
    from mloop.flows.runtime import run_flow

    tag = f"automation-{ctx.firing['id']}-{ctx.position}"
    found = list_runs(tag=tag, limit=1, settings=ctx.settings)
    if found and found[0].successful:  # finished before a crash: look it up, never run it again
        return {"flow_run": found[0].id, "status": "finished", "reused": True}
    ctx.record_external(tag)
    outcome = run_flow(spec["file"], params=spec.get("parameters"), tags=[tag, "automation"],
                       flow_class=spec.get("flow"), settings=ctx.settings,
                       origin_run=found[0].id if found else None, echo=lambda _msg: None)
    return {"flow_run": outcome.run_id, "status": "finished", "resumed": bool(found)}


def _challenger_and_champion(spec: dict[str, Any], ctx: Context) -> tuple[Any, Any]:
    from mloop.registry._log import registry_for

    registry = registry_for(ctx.settings)
    champion = registry.get_alias(ctx.rule.model, spec.get("champion", "champion"))
    latest = registry.list_versions(ctx.rule.model)[-1]
    if latest.version == champion.version:
        raise Stop(f"no challenger: the newest version of {ctx.rule.model} (v{latest.version}) is the champion")
    return latest, champion


def _evaluate(spec: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """The gate on each declared data set (the holdout, recent labelled traffic); every one must pass."""
    from mloop.automation.gate import judge
    from mloop.registry._log import registry_for
    from mloop.registry.loader import load_model

    challenger, champion = _challenger_and_champion(spec, ctx)
    registry = registry_for(ctx.settings)
    models = load_model(champion.uri, client=registry), load_model(challenger.uri, client=registry)
    verdict: dict[str, Any] = {"challenger_version": challenger.version, "champion_version": champion.version}
    failed = None
    for source, (inputs, truth) in _gate_data(spec, ctx):
        result = judge(*models, inputs, truth, metric=spec["metric"], margin=float(spec.get("margin", 0.0)),
                       max_latency_ms=spec.get("max_latency_ms"))
        verdict[source] = result.to_dict()
        if not result.passed and failed is None:
            failed = f"on the {source}: {result.reason}"
    if failed is None and "slices" in spec:
        failed = _slice_check(spec, challenger, verdict, registry)
    verdict.update(verdict.get("holdout") or verdict.get("traffic") or {})
    reason = failed or "; ".join(f"on the {s}: {verdict[s]['reason']}" for s in ("holdout", "traffic") if s in verdict)
    registry.update_version(ctx.rule.model, challenger.version, tags={
        "automation.gate": ("rejected: " if failed else "passed: ") + reason[:4000]})
    if failed:
        raise Stop(f"v{challenger.version} stays registered, not promoted: {failed}", field="evaluate")
    return verdict


def _slice_check(spec: dict[str, Any], challenger: Any, verdict: dict[str, Any], registry: Any) -> str | None:
    """mloop.analyze of the challenger on the holdout by ``slices`` (stored with the version): how far its worst
    slice falls behind overall on the primary metric, against ``max_slice_gap``."""
    import pandas as pd

    from mloop.analysis.analyze import analyze
    from mloop.analysis.result import summarize

    frame = pd.read_parquet(spec["holdout"])
    analysis = analyze(challenger.uri, frame, label=spec["target"], slices=spec["slices"], registry=registry)
    gap = summarize(analysis).get("worst_slice_gap")
    verdict["worst_slice_gap"] = gap
    if gap is not None and gap > float(spec["max_slice_gap"]):
        return (f"on the holdout: its worst slice by {', '.join(spec['slices'])} falls {gap:.4f} behind overall, "
                f"over the bound of {spec['max_slice_gap']}")
    return None


def _gate_data(spec: dict[str, Any], ctx: Context) -> list[tuple[str, tuple[Any, Any]]]:
    from mloop._util.clock import now_ms
    from mloop.automation.gate import labelled_traffic, read_holdout
    from mloop.monitoring.monitor import parse_duration

    data = []
    if "holdout" in spec:
        data.append(("holdout", read_holdout(spec["holdout"], spec["target"])))
    if "traffic" in spec:
        inputs, truth = labelled_traffic(ctx.settings, ctx.rule.model, parse_duration(spec["traffic"], "traffic"),
                                         now_ms())
        needed = int(spec.get("min_rows", 30))
        if len(truth) < needed:
            raise Stop(f"only {len(truth)} labelled predictions of {ctx.rule.model} in the last {spec['traffic']}; "
                       f"the gate needs {needed}", field="evaluate")
        data.append(("traffic", (inputs, truth)))
    return data


def _notify(spec: dict[str, Any], ctx: Context) -> dict[str, Any]:
    from mloop.events.outbox import append_event
    from mloop.store.sql import open_database

    message = str(spec.get("message") or f"rule {ctx.rule.name} fired for {ctx.rule.model}")[:2000]
    with open_database(ctx.settings.db_url).write() as conn:
        event = append_event(conn, "automation", "automation.notify", ctx.rule.model,
                             {"event": "automation.notify", "rule": ctx.rule.name, "firing": ctx.firing["id"],
                              "message": message})
    return {"message": message, "event_id": event["event_id"]}


def _promote_target(spec: dict[str, Any], ctx: Context) -> int:
    gate = ctx.earlier.get("evaluate")
    if gate is not None:
        return int(gate["challenger_version"])
    from mloop.registry._log import registry_for

    return registry_for(ctx.settings).list_versions(ctx.rule.model)[-1].version


_RUNNERS = {"run_flow": _run_flow, "evaluate": _evaluate, "notify": _notify}


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, default=str, sort_keys=True)
