"""Evaluate a rule over every registered version at once (vectorized masks over one frame).

Each candidate that loses gets the reason: the first ``given`` / ``when`` condition it
failed, with its own values, or its rank under ``select`` against the winner.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from mloop._util.clock import from_ms
from mloop.errors import InvalidInputError
from mloop.registry import _tables as t
from mloop.registry.rules.expr import All, Any_, Between, Cmp, In, Neg, Null, fields_of
from mloop.registry.rules.rule import Rule

__all__ = ["Selection", "candidate_frame", "evaluate"]

_BASE = ("name", "version", "status", "flavor", "run_id", "creator", "created", "description")


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """The outcome of a rule: the winner (or None) and every candidate with its reason."""

    rule: Rule
    winner: dict[str, Any] | None
    candidates: pd.DataFrame
    applied: list[str] = field(default_factory=list)

    def explain(self) -> str:
        """The winner, then why each other candidate lost, one line each."""
        if self.winner is None:
            head = f"rule '{self.rule.name}': no version qualifies"
        else:
            head = f"rule '{self.rule.name}': selected {self.winner['name']} v{self.winner['version']}"
        lines = [head] + [f"  {r.name} v{r.version}: {r.reason}" for r in self.candidates.itertuples()
                          if not r.selected]
        return "\n".join(lines + [f"  applied: {a}" for a in self.applied])


def candidate_frame(conn: Connection) -> pd.DataFrame:
    """Every version with its attributes, ``metrics.*`` and ``tags.*`` (model tags, overridden by version tags)."""
    v = t.model_versions
    rows = conn.execute(select(*(v.c[c] for c in _BASE), v.c.metrics).order_by(v.c.name, v.c.version)).all()
    columns = list(zip(*rows, strict=True)) if rows else [()] * (len(_BASE) + 1)
    data: dict[str, Any] = dict(zip(_BASE, columns[:-1], strict=True))
    # One JSON document for all snapshots: a single C-level parse instead of one call per version.
    snapshots = json.loads("[" + ",".join(columns[-1]) + "]")
    data.update(_columns(snapshots, "metrics.", np.nan))
    model_tags: dict[str, dict[str, str]] = {}
    for r in conn.execute(select(t.model_tags)).all():
        model_tags.setdefault(r.name, {})[r.key] = r.value
    version_tags: dict[tuple[str, int], dict[str, str]] = {}
    for r in conn.execute(select(t.version_tags)).all():
        version_tags.setdefault((r.name, r.version), {})[r.key] = r.value
    data.update(_columns([{**model_tags.get(n, {}), **version_tags.get((n, ver), {})}
                          for n, ver in zip(data["name"], data["version"], strict=True)], "tags.", None))
    data.update(_analysis_columns(data.get("tags.mloop.analysis.summary")))
    frame = pd.DataFrame(data, columns=list(data)) if rows else pd.DataFrame(columns=list(data))
    for key in data:
        if key.startswith(("metrics.", "analysis.")):
            frame[key] = frame[key].astype("float64")
    return frame


def _analysis_columns(summaries: list[str | None] | None) -> dict[str, list[Any]]:
    """``analysis.<key>`` columns from each version's stored analysis summary (a JSON tag; see mloop.analysis)."""
    if not summaries:
        return {}
    records = []
    for text in summaries:
        try:
            record = json.loads(text) if text else {}
        except ValueError:  # a hand-edited tag: the version simply has no analysis numbers
            record = {}
        records.append({k: v for k, v in record.items() if isinstance(v, int | float)}
                       if isinstance(record, dict) else {})
    return _columns(records, "analysis.", np.nan)


def _columns(records: list[dict[str, Any]], prefix: str, missing: Any) -> dict[str, list[Any]]:
    keys = sorted({k for r in records for k in r})
    return {prefix + k: [r.get(k, missing) for r in records] for k in keys}


def evaluate(rule: Rule, frame: pd.DataFrame) -> Selection:
    """Apply ``rule`` to the candidate frame; raises InvalidInputError when it names an unknown metric."""
    _check_metrics(rule, frame)
    n = len(frame)
    reason = pd.Series([""] * n, index=frame.index, dtype=object)
    passed = np.ones(n, dtype=bool)
    for section, node in _conjuncts(rule):
        ok = mask(node, frame)
        newly = passed & ~ok
        if newly.any():
            reason[newly] = f"{section}: {render(node)} is false (" + _values(frame[newly], node) + ")"
        passed &= ok
    ranked = frame[passed].sort_values(by=[k.field for k in rule.order] + ["version", "name"],
                                       ascending=[not k.descending for k in rule.order] + [False, True],
                                       na_position="last", kind="stable")
    rank = pd.Series(np.nan, index=frame.index)
    rank[ranked.index] = np.arange(1, len(ranked) + 1)
    winner = None
    if len(ranked):
        top = ranked.iloc[0]
        winner = {"name": top["name"], "version": int(top["version"])}
        keys = [k.field for k in rule.order]
        label = ", ".join(rule.select)
        versus = ", ".join(f"{k}={_fmt(top[k], k)}" for k in keys)
        others = ranked.index[1:]
        if len(others):
            mine = np.full(len(others), "", dtype=object)
            for i, k in enumerate(keys):
                mine = mine + ("" if i == 0 else ", ") + f"{k}=" + _fmt_column(frame.loc[others, k], k)
            ranks = np.array([str(x) for x in rank[others].astype(int).tolist()], dtype=object)
            reason[others] = ("passed, ranked #" + ranks + f" by {label} ("
                              + mine + f" vs {versus} for {winner['name']} v{winner['version']})")
    table = frame[["name", "version"]].assign(passed=passed, rank=rank, reason=reason)
    table["selected"] = False
    if winner is not None:
        table.loc[ranked.index[0], ["selected", "reason"]] = [True, "selected"]
    return Selection(rule=rule, winner=winner, candidates=table.reset_index(drop=True))


def _check_metrics(rule: Rule, frame: pd.DataFrame) -> None:
    known = sorted(c[len("metrics."):] for c in frame.columns if c.startswith("metrics."))
    for section, names in (("given", fields_of(rule.given_ast)), ("when", fields_of(rule.when_ast)),
                           ("select", {k.field for k in rule.order})):
        for name in sorted(names):
            if name.startswith("metrics.") and name not in frame.columns:
                raise InvalidInputError(
                    f"Rule '{rule.name}' refers to an unknown metric '{name[8:]}' in '{section}': no registered "
                    f"version has it. Known metrics: {known}.", field=section, value=name[8:],
                    expected=f"one of {known}")


def _conjuncts(rule: Rule) -> list[tuple[str, Any]]:
    out = []
    for section, node in (("given", rule.given_ast), ("when", rule.when_ast)):
        if node is not None:
            out += [(section, n) for n in (node.items if isinstance(node, All) else (node,))]
    return out


def mask(node: Any, frame: pd.DataFrame) -> np.ndarray:
    """Which rows satisfy ``node``; a missing value never satisfies a comparison."""
    if isinstance(node, All | Any_):
        parts = [mask(i, frame) for i in node.items]
        return np.logical_and.reduce(parts) if isinstance(node, All) else np.logical_or.reduce(parts)
    if isinstance(node, Neg):
        return ~mask(node.item, frame)
    col = frame[node.field] if node.field in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    present = col.notna().to_numpy()
    if isinstance(node, Null):
        return ~present
    if isinstance(node, In):
        return col.isin(list(node.values)).to_numpy() & present
    if isinstance(node, Between):
        x = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")
        return (x >= node.low) & (x <= node.high)
    return _compare(col, node, present)


def _compare(col: pd.Series, node: Cmp, present: np.ndarray) -> np.ndarray:
    value = node.value
    if node.op == "like":
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(value))
        return col.astype(str).str.fullmatch(pattern).to_numpy(dtype=bool) & present
    if isinstance(value, int | float) and not isinstance(value, bool):
        x: Any = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64")
        present = present & ~np.isnan(x)
    else:
        x = col.astype(str).to_numpy(dtype=object)
        value = str(value).lower() if isinstance(value, bool) else value
    ops = {"=": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
           ">=": np.greater_equal}
    with np.errstate(invalid="ignore"):
        return np.asarray(ops[node.op](x, value), dtype=bool) & present


def render(node: Any) -> str:
    """An expression as text again (for reasons)."""
    if isinstance(node, All | Any_):
        joiner = " and " if isinstance(node, All) else " or "
        return "(" + joiner.join(render(i) for i in node.items) + ")"
    if isinstance(node, Neg):
        return f"not {render(node.item)}"
    if isinstance(node, Between):
        return f"{node.field} between {node.low} and {node.high}"
    if isinstance(node, In):
        return f"{node.field} in ({', '.join(map(repr, node.values))})"
    if isinstance(node, Null):
        return f"{node.field} is null"
    return f"{node.field} {node.op} {node.value!r}"


def _values(frame: pd.DataFrame, node: Any) -> np.ndarray:
    out = np.full(len(frame), "", dtype=object)
    for i, name in enumerate(sorted(fields_of(node))):
        col = frame[name] if name in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        out = out + ("" if i == 0 else ", ") + f"{name}=" + _fmt_column(col, name)
    return out


def _fmt_column(col: pd.Series, name: str) -> np.ndarray:
    """``_fmt`` of every value of ``col`` (an object array), without a Python call per value."""
    missing = col.isna().to_numpy()
    if name == "created":
        text = pd.to_datetime(col, unit="ms", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3]
        out = text.to_numpy(dtype=object)
    elif pd.api.types.is_float_dtype(col.dtype):
        out = np.array([f"{v:.6g}" for v in col.to_numpy(dtype="float64").tolist()], dtype=object)
    else:
        out = np.array([str(v) for v in col.tolist()], dtype=object)
    out[missing] = "missing"
    return out


def _fmt(value: Any, name: str = "") -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "missing"
    if name == "created":
        return f"{from_ms(int(value)):%Y-%m-%d %H:%M:%S.%f}"[:-3]
    if isinstance(value, float | np.floating):
        return f"{value:.6g}"
    return str(value)
