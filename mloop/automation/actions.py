"""The actions a rule runs, in order: ``run_flow``, ``evaluate`` (the gate), ``promote``, ``rollback``,
``notify``. Each returns its result as a dict; ``Stop`` ends the firing early with a reason (a losing challenger).

An action that starts something outside the database records how to find it first (a flow run's tag), so a
runtime that died mid-action finds it again instead of starting a second one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mloop._util.failpoint import failpoint
from mloop.automation._options import check_options
from mloop.automation._tables import actions as action_rows
from mloop.automation.rollout_spec import ROLLOUT_OPTIONS, check_rollout
from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError

__all__ = ["Stop", "check_action", "mark_done", "run_action"]

_OPTIONS = {
    "run_flow": ({"file"}, {"parameters", "flow", "executor", "ray_address"}),
    "evaluate": (set(), {"metric", "metrics", "holdout", "target", "traffic", "min_rows", "margin",
                         "max_latency_ms", "champion", "slices", "max_slice_gap", "challenger"}),
    **ROLLOUT_OPTIONS,
    "promote": (set(), {"alias", "environment"}),
    "rollback": (set(), {"alias", "window"}),
    "notify": (set(), {"message"}),
}


class Stop(MloopError):
    """The firing ends here, by design (not a failure): the reason (and ``details``, the figures behind it) is
    recorded and shown."""

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, field=field)
        self.details = details or {}


@dataclass
class Context:
    """What an action sees: the firing, its rule, the results of the actions before it."""

    settings: Settings
    firing: dict[str, Any]
    rule: Any
    position: int
    earlier: dict[str, dict[str, Any]]  # kind -> result of the last action of that kind so far
    record_external: Any  # callable(str): store the id of what this action is about to start
    step: Any = None  # the action's row (firing, position, kind): mark_done(conn, ctx.step, result) finishes it
    external_id: str | None = None  # what record_external stored before a crash, read again on resume


def check_action(kind: str, spec: dict[str, Any], where: str) -> dict[str, Any]:
    """``spec`` of one action, with its required and known options checked."""
    required, optional = _OPTIONS[kind]
    spec = check_options(spec, required, optional, where, kind,
                         numbers=("margin", "max_latency_ms", "min_rows", "max_slice_gap"))
    if "parameters" in spec and not isinstance(spec["parameters"], dict):
        raise InvalidInputError(field=f"{where}.parameters", value=spec["parameters"], expected="a mapping")
    if kind == "evaluate":
        _check_evaluate(spec, where)
    if kind in ROLLOUT_OPTIONS:
        check_rollout(kind, spec, where)
    if kind == "run_flow" and spec.get("executor", "local") not in ("local", "ray"):
        raise InvalidInputError(field=f"{where}.executor", value=spec["executor"], expected="local or ray")
    if kind == "rollback" and "window" in spec:
        from mloop.monitoring.monitor import parse_duration

        parse_duration(spec["window"], f"{where}.window")
    return dict(spec)


def _check_evaluate(spec: dict[str, Any], where: str) -> None:
    """The gate's data sets and bounds: a holdout (with its target) and/or recent traffic; slices need both."""
    from mloop.automation.gate import SCORES

    if ("metric" in spec) == ("metrics" in spec):
        raise InvalidInputError(field=f"{where}.metric", value=spec.get("metric"),
                                expected="one metric (with margin), or metrics: a mapping of metric to margin")
    if "metric" in spec and spec["metric"] not in SCORES:
        raise InvalidInputError(field=f"{where}.metric", value=spec["metric"], expected=f"one of {SCORES}")
    if "metrics" in spec:
        _check_metrics(spec["metrics"], f"{where}.metrics")
        if "margin" in spec:
            raise InvalidInputError(field=f"{where}.margin", value=spec["margin"],
                                    expected="no margin beside metrics: each metric there has its own")
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


def _check_metrics(metrics: Any, where: str) -> None:
    from mloop.automation.gate import SCORES

    if not isinstance(metrics, dict) or not metrics:
        raise InvalidInputError(field=where, value=metrics, expected="a mapping of metric to margin, e.g. "
                                "{mae: 0.5, r2: 0.0}")
    for name, margin in metrics.items():
        if name not in SCORES:
            raise InvalidInputError(field=f"{where}.{name}", value=name, expected=f"one of {SCORES}")
        if isinstance(margin, bool) or not isinstance(margin, int | float):
            raise InvalidInputError(field=f"{where}.{name}", value=margin, expected="a margin: a number")


def run_action(kind: str, spec: dict[str, Any], ctx: Context) -> dict[str, Any]:
    if kind in ROLLOUT_OPTIONS:
        from mloop.automation.rollout import run_canary, run_shadow

        return (run_shadow if kind == "shadow" else run_canary)(spec, ctx)
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
                       flow_class=spec.get("flow"), settings=ctx.settings, executor=_executor(spec),
                       origin_run=found[0].id if found else None, echo=lambda _msg: None)
    return {"flow_run": outcome.run_id, "status": "finished", "resumed": bool(found),
            "executor": spec.get("executor", "local")}


def _executor(spec: dict[str, Any]) -> Any:
    """``executor: ray`` retrains on the Ray cluster at ``ray_address`` (or the Ray this process already
    started, or a local one); the default runs the flow's tasks in local processes."""
    if spec.get("executor", "local") == "local":
        return None
    from mloop.flows.executors.ray import RayExecutor

    return RayExecutor(spec.get("ray_address"))


def _challenger_and_champion(spec: dict[str, Any], ctx: Context) -> tuple[Any, Any]:
    from mloop.registry import registry_for

    registry = registry_for(ctx.settings)
    champion = registry.get_alias(ctx.rule.model, spec.get("champion", "champion"))
    challenger = challenger_version(ctx, spec.get("challenger"))
    if challenger.version == champion.version:
        raise Stop(f"no challenger: v{challenger.version} of {ctx.rule.model} is already the champion")
    return challenger, champion


def challenger_version(ctx: Context, alias: str | None = None) -> Any:
    """The version this firing is about: the one carrying ``alias`` when the rule names one; else the first
    version the firing's flow run registered (a flow that registers several registers its best first); else,
    with no run_flow before it, the model's newest version."""
    from mloop.registry import registry_for

    registry = registry_for(ctx.settings)
    if alias:
        return registry.get_alias(ctx.rule.model, alias)
    flow = ctx.earlier.get("run_flow")
    if flow is None:
        return registry.list_versions(ctx.rule.model)[-1]
    produced = _flow_versions(registry, flow["flow_run"], ctx.rule.model, ctx.settings)
    if not produced:
        raise Stop(f"no challenger: flow run {flow['flow_run'][:8]} registered no version of {ctx.rule.model}")
    return produced[0]


def _flow_versions(registry: Any, run_id: str, model: str, settings: Settings) -> list[Any]:
    """The versions of ``model`` a flow run registered; a resumed run that reused its register step finds them
    in the run it resumed (and so on up the chain)."""
    from mloop.flows.client import get_run

    seen: list[str] = []
    while run_id and run_id not in seen and len(seen) < 32:
        seen.append(run_id)
        produced = registry.versions_from_run(run_id, model)
        if produced:
            return list(produced)
        run_id = get_run(run_id, settings=settings).origin_run_id
    return []


def _evaluate(spec: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """The gate on each declared data set (the holdout, recent labelled traffic); every one must pass."""
    from mloop.automation.gate import judge
    from mloop.registry import registry_for
    from mloop.registry.loader import load_model

    challenger, champion = _challenger_and_champion(spec, ctx)
    registry = registry_for(ctx.settings)
    models = load_model(champion.uri, client=registry), load_model(challenger.uri, client=registry)
    verdict: dict[str, Any] = {"challenger_version": challenger.version, "champion_version": champion.version}
    failed = None
    for source, (inputs, truth) in _gate_data(spec, ctx):
        result = judge(*models, inputs, truth, metric=spec.get("metric"), margin=float(spec.get("margin", 0.0)),
                       metrics=spec.get("metrics"), max_latency_ms=spec.get("max_latency_ms"))
        verdict[source] = result.to_dict()
        if not result.passed and failed is None:
            failed = f"on the {source}: {result.reason}"
    if failed is None and "slices" in spec:
        failed = _slice_check(spec, challenger, verdict, registry)
    verdict.update(verdict.get("holdout") or verdict.get("traffic") or {})
    reason = failed or "; ".join(f"on the {s}: {verdict[s]['reason']}" for s in ("holdout", "traffic") if s in verdict)
    # the lineage of every judged version, promoted or not: its tag names the firing, whose event says why
    registry.update_version(ctx.rule.model, challenger.version, tags={
        "automation.gate": ("rejected: " if failed else "passed: ") + reason[:4000],
        "automation.evaluate": f"{ctx.rule.name} firing {ctx.firing['id']}", "automation.firing": ctx.firing["id"]})
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
    """The notification is an outbox event written in the transaction that marks this action done: a crash
    before the commit leaves neither (the resumed runtime writes it once), after it both (never again); the
    outbox then delivers it once to each subscribed receiver that answers 2xx."""
    from mloop.events.outbox import append_event
    from mloop.store.sql import open_database

    message = str(spec.get("message") or f"rule {ctx.rule.name} fired for {ctx.rule.model}")[:2000]
    with open_database(ctx.settings.db_url).write() as conn:
        event = append_event(conn, "automation", "automation.notify", ctx.rule.model,
                             {"event": "automation.notify", "rule": ctx.rule.name, "firing": ctx.firing["id"],
                              "message": message})
        result = {"message": message, "event_id": event["event_id"]}
        mark_done(conn, ctx.step, result)
        failpoint("notify.before_commit")
    failpoint("notify.after_commit")
    return result


def mark_done(conn: Any, step: Any, result: dict[str, Any]) -> None:
    """The compare-and-set on the action row: only the runtime that still sees it running may finish it (and
    whatever the caller wrote in the same transaction commits with it)."""
    from sqlalchemy import update

    from mloop._util.clock import now_ms
    from mloop.errors import ConflictError

    marked = conn.execute(update(action_rows).where(
        action_rows.c.firing == step.firing, action_rows.c.position == step.position,
        action_rows.c.status == "running").values(status="done", result=dumps(result), finished=now_ms())).rowcount
    if not marked:
        raise ConflictError(f"{step.kind} of firing {step.firing} was already done by another runtime",
                            field="firing")


def _promote_target(spec: dict[str, Any], ctx: Context) -> int:
    for kind in ("evaluate", "shadow"):  # what the gate or the shadow judged is what gets promoted
        if kind in ctx.earlier:
            return int(ctx.earlier[kind]["challenger_version"])
    return int(challenger_version(ctx).version)  # type: ignore[arg-type]


_RUNNERS = {"run_flow": _run_flow, "evaluate": _evaluate, "notify": _notify}


def dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, default=str, sort_keys=True)
