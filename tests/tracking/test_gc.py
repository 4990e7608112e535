"""Retention: experiments soft-delete and restore; gc purges rows and bytes for real."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mloop.errors import AlreadyExistsError, ConflictError, NotFoundError
from mloop.tracking import TrackingClient


def test_experiment_lifecycle(client: TrackingClient) -> None:
    exp = client.create_experiment("churn", tags={"owner": "ana"})
    assert client.get_experiment("churn").tags == {"owner": "ana"}
    with pytest.raises(AlreadyExistsError, match="churn"):
        client.create_experiment("churn")
    client.rename_experiment("churn", "churn-v2")
    assert client.get_experiment("churn-v2").experiment_id == exp.experiment_id
    client.delete_experiment("churn-v2")
    assert "churn-v2" not in [e.name for e in client.list_experiments()]
    with pytest.raises(ConflictError, match="deleted"):
        client.start_run(experiment_id=exp.experiment_id)
    client.restore_experiment("churn-v2")
    assert "churn-v2" in [e.name for e in client.list_experiments()]
    with pytest.raises(NotFoundError, match="nope"):
        client.get_experiment("nope")


def test_gc_purges_deleted_runs_and_their_bytes(client: TrackingClient) -> None:
    with client.start_run("gc") as doomed:
        doomed.log_metric("m", 1.0)
        doomed.log_text("bye", "f.txt")
    with client.start_run("gc") as kept:
        kept.log_text("stay", "f.txt")
    client.delete_run(doomed.run_id)
    assert client.gc(older_than=timedelta(days=1))["runs"] == 0  # too recent
    result = client.gc(older_than=timedelta(0))
    assert result["runs"] == 1 and result["files"] == 1
    with pytest.raises(NotFoundError):
        client.get_run(doomed.run_id)
    assert [a.path for a in client.repo.list_artifacts(kept.run_id)] == ["f.txt"]
    if not client.settings.remote:
        files = [p for p in Path(client.settings.artifact_root).rglob("*") if p.is_file()]
        assert len(files) == 1


def test_gc_purges_deleted_experiments(client: TrackingClient) -> None:
    with client.start_run("old") as run:
        run.log_metric("m", 1.0)
    client.delete_experiment("old")
    result = client.gc(older_than=timedelta(0))
    assert result == {"runs": 1, "experiments": 1, "files": 0, "kept_for_registry": 0, "kept_for_flows": 0}
    assert "old" not in [e.name for e in client.list_experiments(include_deleted=True)]
