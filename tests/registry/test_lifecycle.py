"""Environments with history and approvals, deletion guards, lineage, audit and the retention guard."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from mloop.config import Settings
from mloop.errors import ConflictError, NotFoundError
from mloop.registry import ApprovalRequest, Deployment, RegistryClient
from tests.registry.conftest import log_version


def test_environments_keep_history(registry: RegistryClient, tracking, pipeline, frame) -> None:
    for _ in range(2):
        log_version(tracking, pipeline, frame)
    registry.environments.create("staging")
    first = registry.environments.deploy("eta", 1, "staging", reason="first")
    assert isinstance(first, Deployment) and (first.version, first.previous) == (1, None)
    registry.environments.deploy("eta", 2, "staging")
    assert registry.environments.current("eta", "staging") == 2
    assert registry.environments.get("staging")["models"] == {"eta": 2}
    registry.environments.undeploy("eta", "staging", reason="rollback test")
    history = registry.environments.history("staging", "eta")
    assert [(h.version, h.previous) for h in history] == [(None, 2), (2, 1), (1, None)]
    assert history[-1].reason == "first" and history[0].actor == "alice"
    with pytest.raises(NotFoundError, match="No environment named 'prod'"):
        registry.environments.deploy("eta", 1, "prod")


def test_approval_gate(registry: RegistryClient, tracking, pipeline, frame) -> None:
    log_version(tracking, pipeline, frame)
    log_version(tracking, pipeline, frame)
    registry.environments.create("production", requires_approval=True)
    request = registry.environments.deploy("eta", 1, "production", reason="best mae")
    assert isinstance(request, ApprovalRequest) and request.status == "pending"
    assert registry.environments.current("eta", "production") is None
    with pytest.raises(ConflictError, match="already waits for approval"):
        registry.environments.deploy("eta", 1, "production")
    deployed = registry.environments.approve(request.id, comment="looks good")
    assert deployed.version == 1 and registry.environments.current("eta", "production") == 1
    with pytest.raises(ConflictError, match="already approved"):
        registry.environments.reject(request.id)
    second = registry.environments.deploy("eta", 2, "production")
    rejected = registry.environments.reject(second.id, comment="bias too high")
    assert rejected.status == "rejected" and rejected.comment == "bias too high"
    assert registry.environments.current("eta", "production") == 1
    actions = [e.action for e in registry.audit(model="eta")][:5]
    assert actions[0] == "approval.rejected" and "approval.approved" in actions
    approved = registry.audit(model="eta", action="approval.approved")[0]
    assert approved.after["comment"] == "looks good" and approved.actor == "alice"


def test_deleting_a_deployed_version_needs_force(registry: RegistryClient, tracking, pipeline, frame) -> None:
    v1 = log_version(tracking, pipeline, frame)
    registry.environments.create("staging")
    registry.environments.deploy("eta", 1, "staging")
    with pytest.raises(ConflictError, match=r"environments \['staging'\]"):
        registry.delete_version("eta", 1)
    assert registry.blobs.list(v1.storage)
    registry.delete_version("eta", 1, force=True)
    assert registry.blobs.list(v1.storage) == []
    assert registry.environments.current("eta", "staging") is None
    assert registry.audit(model="eta", action="version.deleted")[0].before["version"] == 1


def test_lineage_both_ways(registry: RegistryClient, tracking, pipeline, frame) -> None:
    v1 = log_version(tracking, pipeline, frame, metrics={"mae": 1.2})
    other = log_version(tracking, pipeline, frame.head(30), name="other")
    lineage = registry.lineage("eta", 1)
    assert lineage["run"]["run_id"] == v1.run_id and lineage["run"]["metrics"]["mae"] == 1.2
    digest = lineage["datasets"][0]["digest"]
    assert lineage["datasets"][0]["context"] == "train" and lineage["datasets"][0]["rows"] == 60
    assert [(v.name, v.version) for v in registry.versions_trained_on(digest)] == [("eta", 1)]
    assert [(v.name, v.version) for v in registry.versions_trained_on(digest[:12])] == [("eta", 1)]
    assert other.name == "other"


def test_gc_never_purges_runs_registered_versions_need(registry: RegistryClient, tracking, pipeline,
                                                       frame) -> None:
    import mloop.registry  # noqa: F401
    from mloop.registry._guard import registered_runs
    from mloop.tracking._retention import RUN_GUARDS

    assert RUN_GUARDS.count(registered_runs) == 1
    version = log_version(tracking, pipeline, frame)
    with tracking.start_run("eta-exp") as scratch:
        pass
    tracking.delete_run(version.run_id)
    tracking.delete_run(scratch.run_id)
    result = tracking.gc(timedelta(0))
    assert result["runs"] == 1 and result["kept_for_registry"] == 1
    assert tracking.get_run(version.run_id).run_id == version.run_id
    with pytest.raises(NotFoundError):
        tracking.get_run(scratch.run_id)


def test_gc_from_a_process_that_never_imported_the_registry_keeps_registered_runs(
        settings: Settings, tracking, pipeline, frame) -> None:  # type: ignore[no-untyped-def]
    version = log_version(tracking, pipeline, frame)
    tracking.delete_run(version.run_id)
    stores = f"home={settings.home!r}, db_url={settings.db_url!r}"
    script = ("from datetime import timedelta; from mloop.config import Settings; "
              "from mloop.tracking import TrackingClient; "
              f"print(TrackingClient(Settings.load({stores})).gc(timedelta(0)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "'kept_for_registry': 1" in out.stdout
    assert tracking.get_run(version.run_id).run_id == version.run_id


def test_gc_keeps_the_runs_a_registered_version_is_nested_in(registry: RegistryClient, tracking, pipeline,
                                                             frame) -> None:
    from mloop._sdk import ActiveRun

    with tracking.start_run("eta-exp", name="sweep", run_class=ActiveRun) as sweep:
        sweep.log_input(frame, name="all-trips", context="train")
        with tracking.start_run("eta-exp", name="trial-3", parent=sweep, run_class=ActiveRun) as trial:
            trial.log_input(frame.head(40), name="trial-trips", context="train")
            trial.log_model(pipeline, name="eta", input_example=frame.head(3))
    with (tracking.start_run("eta-exp", name="scratch") as scratch,
          tracking.start_run("eta-exp", name="scratch-child", parent=scratch) as scratch_child):
        pass
    for run in (sweep, scratch, scratch_child):  # the trial itself stays active: only its parent is deleted
        tracking.delete_run(run.run_id)

    result = tracking.gc(timedelta(0))

    assert result["runs"] == 2 and result["kept_for_registry"] == 1
    for gone in (scratch.run_id, scratch_child.run_id):
        with pytest.raises(NotFoundError):
            tracking.get_run(gone)
    lineage = registry.lineage("eta", 1)
    assert [a["run_id"] for a in lineage["run"]["ancestors"]] == [sweep.run_id]
    assert [(d["name"], d["run_id"]) for d in lineage["datasets"]] == [
        ("trial-trips", trial.run_id), ("all-trips", sweep.run_id)]
    assert tracking.get_run(sweep.run_id).lifecycle_stage == "deleted"  # kept, not restored


def test_lineage_of_a_version_whose_parent_run_is_gone_shows_what_is_left(registry: RegistryClient, tracking,
                                                                          pipeline, frame) -> None:
    from mloop._sdk import ActiveRun
    from mloop.registry import _tables as rt
    from mloop.tracking import _tables as tt

    with (tracking.start_run("eta-exp", name="sweep") as sweep,
          tracking.start_run("eta-exp", name="trial", parent=sweep, run_class=ActiveRun) as trial):
        trial.log_input(frame, name="trips", context="train")
        trial.log_model(pipeline, name="eta", input_example=frame.head(3))
    # a parent purged before gc kept ancestors: remove its row the way that purge did
    with registry.db.write() as conn:
        conn.execute(tt.runs.delete().where(tt.runs.c.run_id == sweep.run_id))
        assert conn.execute(rt.model_versions.select()).first().run_id == trial.run_id
    lineage = registry.lineage("eta", 1)
    assert lineage["run"]["run_id"] == trial.run_id and lineage["run"]["ancestors"] == []
    assert [d["name"] for d in lineage["datasets"]] == ["trips"]
    assert [(v.name, v.version) for v in registry.versions_trained_on(lineage["datasets"][0]["digest"])] == [
        ("eta", 1)]
