"""Lineage both ways: version -> run -> datasets, and dataset -> the versions trained on it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mloop.errors import InvalidInputError
from mloop.registry import _models
from mloop.registry import _tables as t
from mloop.registry.entities import ModelVersion

if TYPE_CHECKING:
    from mloop.registry.client import RegistryClient

__all__ = ["DIGEST_PATTERN", "version_lineage", "versions_for_digest"]

# a full sha256 hex digest or a prefix of 8 or more of its characters (public: the REST API documents it)
DIGEST_PATTERN = r"^[0-9a-f]{8,}$"


def version_lineage(client: RegistryClient, name: str, version: int) -> dict[str, Any]:
    """A version, its source run (params, metrics, status) and the datasets that run used."""
    found = client.get_version(name, version)
    out: dict[str, Any] = {"model": name, "version": found.version, "source": found.source, "run": None,
                           "datasets": []}
    if found.run_id is None:
        return out
    run = client.runs.get_run(found.run_id)
    out["run"] = {"run_id": run.run_id, "name": run.name, "experiment_id": run.experiment_id,
                  "status": str(run.status), "params": run.params, "metrics": run.metrics,
                  "git_commit": run.tags.get("mloop.git.commit")}
    out["datasets"] = [{"name": d.name, "digest": d.digest, "rows": d.rows, "context": context, "source": d.source,
                        "schema": d.schema} for d, context in client.runs.list_inputs(run.run_id)]
    out["run"]["ancestors"] = ancestors = _ancestors(client, run.parent_run_id)
    flow = next((a for a in ancestors if a["flow"]), None)
    out["flow"] = {"name": flow["flow"], "run_id": flow["run_id"]} if flow else None
    return out


def _ancestors(client: RegistryClient, run_id: str | None) -> list[dict[str, Any]]:
    """The chain of parent runs, nearest first; a flow run is marked with its flow's name."""
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    while run_id is not None and run_id not in seen and len(chain) < 32:
        seen.add(run_id)
        run = client.runs.get_run(run_id)
        chain.append({"run_id": run.run_id, "name": run.name, "flow": run.tags.get("mloop.flow")})
        run_id = run.parent_run_id
    return chain


def versions_for_digest(client: RegistryClient, digest: str) -> list[ModelVersion]:
    """Every registered version whose run used a dataset with ``digest`` (a full or 8+ character prefix)."""
    if not isinstance(digest, str) or not re.fullmatch(DIGEST_PATTERN, digest):
        raise InvalidInputError(field="digest", value=digest, expected="a sha256 hex digest (at least 8 characters)")
    digests = [digest] if len(digest) == 64 else _expand(client, digest)
    run_ids = sorted({r for d in digests for r in client.runs.runs_with_dataset(d)})
    if not run_ids:
        return []
    with client.db.read() as conn:
        rows = conn.execute(select(t.model_versions).where(t.model_versions.c.run_id.in_(run_ids))
                            .order_by(t.model_versions.c.name, t.model_versions.c.version)).all()
        return _models.versions_from_rows(conn, rows)


def _expand(client: RegistryClient, prefix: str) -> list[str]:
    from mloop.tracking import _tables as tt

    with client.db.read() as conn:
        return [r.digest for r in conn.execute(select(tt.datasets.c.digest).where(
            tt.datasets.c.digest.startswith(prefix)).distinct())]
