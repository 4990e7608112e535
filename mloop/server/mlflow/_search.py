"""MLflow's searches (runs and experiments) on mloop's filter compiler, paged by signed tokens.

MLflow's filter syntax (``metrics.x > 1 and params.p = 'a' and attributes.status = 'FINISHED'``) is a subset of
mloop's language, so it goes through the same parser and SQL compiler; only MLflow's upper-case statuses and its
``"0"`` experiment are translated. A page token is an offset signed with the server's key and bound to the search
that issued it: a token edited by hand, or replayed on another search, is refused as an invalid parameter.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError
from mloop.server.mlflow._runs import STATUS_IN, experiment_json, resolve_experiment, runs_json
from mloop.tracking import _tables as t
from mloop.tracking._query import _compile, build_search
from mloop.tracking._sql import SqlTrackingRepository
from mloop.tracking.entities import Experiment, Lifecycle
from mloop.tracking.search import And, Compare, Not, Or, parse

MAX_RESULTS = 50_000  # MLflow's own bound on one page
_MAX_OFFSET = 10**12
VIEW_TYPES = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3, "1": 1, "2": 2, "3": 3}


# ---------------------------------------------------------------- page tokens
def token_key(home: str) -> bytes:
    """The server's key for page tokens: made once under its home, shared by all its workers."""
    path = Path(home, "keys", "mlflow-page-tokens")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker made it first
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(os.urandom(32))
    return path.read_bytes()


def search_scope(**query: Any) -> str:
    """What a token is bound to: a digest of the search's own arguments (all but the token)."""
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]


def issue_token(key: bytes, scope: str, offset: int) -> str:
    """A page token for ``offset`` in the search ``scope``, signed with ``key``.

    >>> key, scope = b"k" * 32, search_scope(f="metrics.rmse < 4")
    >>> read_token(key, scope, issue_token(key, scope, 1000))
    1000
    >>> read_token(key, search_scope(f="another search"), issue_token(key, scope, 1000))
    Traceback (most recent call last):
    ...
    mloop.errors.InvalidInputError: Invalid page_token ...
    """
    body = base64.urlsafe_b64encode(json.dumps({"o": offset, "s": scope}).encode()).decode().rstrip("=")
    return f"{body}.{_mac(key, body)}"


def read_token(key: bytes, scope: str, token: str | None) -> int:
    """The offset ``token`` stands for (0 without one); InvalidInputError for a forged, edited or foreign one."""
    if not token:
        return 0
    body, _, mac = token.partition(".")
    bad = InvalidInputError(f"Invalid page_token {token[:60]!r}: expected the next_page_token of a previous "
                            "answer to this same search.", field="page_token", value=token[:60],
                            expected="a next_page_token from this server")
    if len(token) > 512 or not hmac.compare_digest(mac, _mac(key, body)):
        raise bad
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        raise bad from None
    offset = payload.get("o") if isinstance(payload, dict) else None
    if payload.get("s") != scope or not isinstance(offset, int) or not 0 <= offset <= _MAX_OFFSET:
        raise bad
    return offset


def _mac(key: bytes, body: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()[:18]).decode()


def check_max_results(value: int | None, default: int) -> int:
    if value is None:
        return default
    if not 1 <= value <= MAX_RESULTS:
        raise InvalidInputError(field="max_results", value=value, expected=f"a whole number from 1 to {MAX_RESULTS}")
    return value


def view_type(value: str | int | None) -> int:
    found = VIEW_TYPES.get(str(value or "ACTIVE_ONLY").upper())
    if found is None:
        raise InvalidInputError(field="view_type", value=value, expected="ACTIVE_ONLY, DELETED_ONLY or ALL")
    return found


# ---------------------------------------------------------------- runs
def search_runs(repo: SqlTrackingRepository, key: bytes, *, experiment_ids: list[str], filter: str,
                run_view_type: int, max_results: int, order_by: list[str], page_token: str | None
                ) -> dict[str, Any]:
    """MLflow's SearchRuns answer: ``{"runs": [...], "next_page_token": ...}`` (no token on the last page)."""
    scope = search_scope(e=experiment_ids, f=filter, v=run_view_type, o=order_by)
    offset = read_token(key, scope, page_token)
    ids = [_experiment_int(resolve_experiment(repo, e)) for e in experiment_ids]
    tree = parse(filter)
    query, _ = build_search(ids, "", order_by, None, include_deleted=run_view_type != 1)
    if tree is not None:
        query = query.where(_compile(_mlflow_values(tree, repo)))
    if run_view_type == 2:
        query = query.where(t.runs.c.lifecycle_stage == Lifecycle.DELETED)
    with repo.db.read() as conn:
        rows = conn.execute(query.limit(max_results + 1).offset(offset)).all()
        answer: dict[str, Any] = {"runs": runs_json(conn, rows[:max_results])}
    if len(rows) > max_results:
        answer["next_page_token"] = issue_token(key, scope, offset + max_results)
    return answer


def _experiment_int(experiment_id: str) -> int:
    if not (experiment_id.isascii() and experiment_id.isdigit() and len(experiment_id) <= 9):
        raise InvalidInputError(field="experiment_ids", value=experiment_id, expected="experiment ids (digits)")
    return int(experiment_id)


def _mlflow_values(node: Any, repo: SqlTrackingRepository) -> Any:
    """The filter with MLflow's values in mloop's terms: statuses in lower case, experiment "0" as Default's id."""
    if isinstance(node, And | Or):
        return type(node)(tuple(_mlflow_values(n, repo) for n in node.items))
    if isinstance(node, Not):
        return Not(_mlflow_values(node.item, repo))
    if node.kind != "attributes" or node.key not in ("status", "experiment_id"):
        return node
    values = node.value if isinstance(node.value, tuple) else (node.value,)
    if node.key == "status":
        if node.op in ("=", "!=", "IN", "NOT IN"):
            bad = [v for v in values if str(v).upper() not in STATUS_IN]
            if bad:
                raise InvalidInputError(field="filter", value=bad[0], expected=f"a status: {sorted(STATUS_IN)}")
        mapped = tuple(str(STATUS_IN.get(str(v).upper(), str(v).lower())) for v in values)
    else:
        mapped = tuple(resolve_experiment(repo, str(v)) for v in values)
    return dataclasses.replace(node, value=mapped if isinstance(node.value, tuple) else mapped[0])


# ---------------------------------------------------------------- experiments
_EXPERIMENT_ORDER = re.compile(r"\s*(?:attributes\.)?(name|experiment_id|creation_time|last_update_time)"
                               r"(?:\s+(ASC|DESC))?\s*", re.IGNORECASE)


def search_experiments(repo: SqlTrackingRepository, key: bytes, *, filter: str, view: int, max_results: int,
                       order_by: list[str], page_token: str | None,
                       visible: Callable[[Experiment], bool] = lambda e: True) -> dict[str, Any]:
    """MLflow's SearchExperiments answer; experiments are few, so they are filtered (by ``filter`` and by what
    the caller may see, ``visible``) and sorted here, before the page is cut."""
    scope = search_scope(f=filter, v=view, o=order_by)
    offset = read_token(key, scope, page_token)
    tree = parse(filter)
    found = [e for e in repo.list_experiments(include_deleted=True)
             if (view == 3 or (e.lifecycle_stage == Lifecycle.ACTIVE) == (view == 1))
             and (tree is None or _matches(tree, e)) and visible(e)]
    found.sort(key=lambda e: (-e.creation_time, int(e.experiment_id)))
    for item in reversed(order_by):
        m = _EXPERIMENT_ORDER.fullmatch(item)
        if m is None:
            raise InvalidInputError(field="order_by", value=item, expected="name, experiment_id, creation_time or "
                                    "last_update_time, optionally followed by ASC or DESC")
        attr, descending = m.group(1).lower(), (m.group(2) or "").upper() == "DESC"
        found.sort(key=lambda e, a=attr: int(getattr(e, a)) if a != "name" else e.name, reverse=descending)
    answer: dict[str, Any] = {"experiments": [experiment_json(e) for e in found[offset:offset + max_results]]}
    if len(found) > offset + max_results:
        answer["next_page_token"] = issue_token(key, scope, offset + max_results)
    return answer


def _matches(node: Any, exp: Experiment) -> bool:
    if isinstance(node, And):
        return all(_matches(n, exp) for n in node.items)
    if isinstance(node, Or):
        return any(_matches(n, exp) for n in node.items)
    if isinstance(node, Not):
        return not _matches(node.item, exp)
    if node.kind == "attributes" and node.key == "name":
        return _compare(exp.name, node)
    if node.kind == "tags":
        return node.key in exp.tags and _compare(exp.tags[node.key], node)
    raise InvalidInputError(field="filter", value=f"{node.kind}.{node.key}",
                            expected="experiments filtered by name or tags.<key>")


def _compare(actual: str, c: Compare) -> bool:
    values = [str(v) for v in c.value] if isinstance(c.value, tuple) else [str(c.value)]
    if c.op in ("LIKE", "ILIKE"):
        pattern = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in values[0])
        return re.fullmatch(pattern, actual, re.DOTALL | (re.IGNORECASE if c.op == "ILIKE" else 0)) is not None
    ops = {"=": actual == values[0], "!=": actual != values[0], "IN": actual in values, "NOT IN": actual not in values}
    if c.op not in ops:
        raise InvalidInputError(field="filter", value=c.op, expected="= != LIKE ILIKE IN NOT IN for text")
    return ops[c.op]
