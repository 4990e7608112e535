"""Params and tags are queued like metrics; ended runs take nothing more; params compare as MLflow's do.

Every test runs against SQLite, PostgreSQL and through a live server (the ``client`` fixture).
"""

from __future__ import annotations

import multiprocessing
import os
import time

import httpx
import pytest

from mloop.config import Settings
from mloop.errors import ConflictError
from mloop.tracking import RunStatus, TrackingClient


def test_params_and_tags_are_queued_and_read_back_before_the_run_ends(client: TrackingClient) -> None:
    with client.start_run("eta", params={"lr": 0.1}) as run:
        start = time.perf_counter()
        for i in range(200):
            run.log_param(f"p{i}", i if i % 2 else str(i))
            run.set_tag(f"t{i}", f"v{i}")
        assert time.perf_counter() - start < 0.5  # queued: no round trip per call
        seen = client.get_run(run.run_id)  # a read in this process sees what is queued
        assert seen.params["p3"] == 3 and seen.params["p4"] == "4" and seen.tags["t7"] == "v7"
        run.set_tag("t7", "changed")  # a later tag value wins
        assert len(client.search_runs("eta", filter="params.p199 = 199")) == 1
    stored = client.get_run(run.run_id)
    assert len([k for k in stored.params if k.startswith("p")]) == 200 and stored.params["lr"] == 0.1
    assert stored.tags["t7"] == "changed" and stored.status is RunStatus.FINISHED


def test_a_param_changed_in_this_process_is_refused_at_the_call(client: TrackingClient) -> None:
    with client.start_run("eta") as run:
        run.log_param("depth", 3)
        with pytest.raises(ConflictError, match=r"'depth'.*3.*'3'"):
            run.log_param("depth", "3")  # another type is another value, as stored
        run.log_params({"depth": 3, "width": 8})  # the same value again is fine
    assert client.get_run(run.run_id).params == {"depth": 3, "width": 8}


def test_a_param_stored_elsewhere_is_reported_at_flush_and_the_others_are_kept(client: TrackingClient) -> None:
    run = client.start_run("eta")
    client.repo.log_params(run.run_id, {"seed": 1})  # as another process would
    run.log_params({"seed": 2, "lr": 0.5})  # queued: the conflict is not known yet
    run.set_tag("team", "maps")
    with pytest.raises(ConflictError, match=r"'seed'.*1.*2"):
        run.flush()
    run.flush()  # reported once
    run.end()
    stored = client.get_run(run.run_id)
    assert stored.params == {"seed": 1, "lr": 0.5} and stored.tags["team"] == "maps"


def test_the_conflict_is_raised_when_the_block_ends(client: TrackingClient) -> None:
    with pytest.raises(ConflictError, match="'seed'"), client.start_run("eta") as run:
        client.repo.log_params(run.run_id, {"seed": 1})
        run.log_param("seed", 2)
    assert client.get_run(run.run_id).status is RunStatus.FINISHED  # the run is ended all the same


def test_an_ended_run_refuses_metrics_and_params(client: TrackingClient) -> None:
    with client.start_run("eta") as run:
        run.log_metric("loss", 0.5)
    for log in (lambda: run.log_metric("loss", 0.4, step=1), lambda: run.log_param("lr", 0.1),
                lambda: run.log_metrics({"a": 1.0})):
        with pytest.raises(ConflictError, match=rf"{run.run_id} has ended \(status finished\)"):
            log()
    run.set_tag("reviewed", "yes")  # tags annotate a run after it ends: written at once
    stored = client.get_run(run.run_id)
    assert stored.metrics == {"loss": 0.5} and stored.params == {} and stored.tags["reviewed"] == "yes"
    assert len(client.metric_history(run.run_id, "loss")) == 1


def test_the_store_refuses_data_for_an_ended_run(client: TrackingClient) -> None:
    run = client.start_run("eta")
    run.end(RunStatus.FAILED)
    with pytest.raises(ConflictError, match=rf"{run.run_id} has ended \(status failed\)"):
        client.repo.log_params(run.run_id, {"lr": 0.1})
    with pytest.raises(ConflictError, match=rf"{run.run_id} has ended \(status failed\)"):
        client.repo.log_metrics([(run.run_id, "loss", 1.0, 0, 1_700_000_000_000)])
    client.repo.set_tags(run.run_id, {"note": "late"})
    stored = client.get_run(run.run_id)
    assert stored.params == {} and stored.metrics == {} and stored.tags["note"] == "late"


def test_a_run_ended_elsewhere_loses_only_its_own_points(client: TrackingClient) -> None:
    other = client.start_run("eta", name="other")
    run = client.start_run("eta", name="killed")
    client.kill_run(run.run_id)  # another process ends it while this one still logs
    for step in range(50):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
        other.log_metric("loss", 2.0, step=step)
    run.log_param("lr", 0.1)
    with pytest.raises(ConflictError, match=rf"{run.run_id} has ended \(status killed\)"):
        run.flush()
    other.end()
    assert len(client.metric_history(other.run_id, "loss")) == 50
    assert client.metric_history(run.run_id, "loss") == [] and client.get_run(run.run_id).params == {}
    run.end()  # ends quietly: the loss was reported


def test_rest_answers_409_naming_the_run_and_its_status(tmp_path) -> None:
    from tests.server.conftest import serve

    for server in serve(Settings.load(home=str(tmp_path / "server"))):
        client = TrackingClient(Settings.load(home=str(tmp_path / "h"), tracking_uri=server.url))
        with client.start_run("eta") as run:
            pass
        api = server.url + "/api"
        for path, body in ((f"/runs/{run.run_id}/params", {"params": {"lr": 0.1}}),
                           ("/metrics/batch", {"run_ids": [run.run_id], "keys": ["loss"], "values": [1.0],
                                               "steps": [0], "timestamps": [1_700_000_000_000]})):
            answer = httpx.post(api + path, json=body)
            assert answer.status_code == 409, answer.text
            assert run.run_id in answer.json()["message"] and "status finished" in answer.json()["message"]


@pytest.mark.parametrize("logged", [3, "3", 3.0, "3.0", " 3"])
def test_a_number_in_a_filter_matches_a_param_logged_as_number_or_text(client: TrackingClient, logged: object) -> None:
    with client.start_run("eta", params={"p0": logged, "name": "ridge"}):
        pass
    with client.start_run("eta", params={"p0": "three", "name": "3"}):
        pass
    assert len(client.search_runs("eta", filter="params.p0 = 3")) == 1
    assert len(client.search_runs("eta", filter="params.p0 >= 2.5 and params.p0 < 4")) == 1
    assert len(client.search_runs("eta", filter="params.p0 IN (1, 3)")) == 1
    assert len(client.search_runs("eta", filter="params.name = 3")) == 1  # "3" spells 3
    # a quoted value compares the text as stored: 3 and "3" are "3"; 3.0 is "3.0"
    text = str(logged) if not isinstance(logged, float) else repr(logged)
    assert len(client.search_runs("eta", filter=f"params.p0 = '{text}'")) == 1
    assert len(client.search_runs("eta", filter="params.p0 = 'three'")) == 1
    ordered = client.search_runs("eta", order_by="params.p0 DESC")
    assert ordered["params.p0"].iloc[0] == logged  # the number sorts; the text that is no number goes last


def _child_logs(home: str, run_id: str) -> None:
    from mloop import _sdk

    client = _sdk._client  # the parent's client, pool and all, inherited by the fork
    with client.start_run("eta", name="child") as run:
        run.log_metric("loss", 1.0)
    os._exit(0 if client.get_run(run.run_id).metrics == {"loss": 1.0} else 3)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_uses_connections_of_its_own(tmp_path) -> None:
    import mloop

    client = mloop.configure(home=str(tmp_path / "h"))
    with mloop.start_run(experiment="eta") as run:
        mloop.log_metric("loss", 0.5)
        child = multiprocessing.get_context("fork").Process(target=_child_logs, args=(str(tmp_path), run.run_id))
        child.start()
        child.join(60)
        mloop.log_metric("loss", 0.25, step=1)
    assert child.exitcode == 0
    assert client.get_run(run.run_id).metrics == {"loss": 0.25}
    assert sorted(client.search_runs("eta")["name"]) == ["child", run.name]


def test_the_migration_gives_stored_numeric_text_its_number(db_url: str, tmp_path) -> None:
    from sqlalchemy import text

    from mloop.store.sql.engine import Database
    from mloop.store.sql.migrate import upgrade

    client = TrackingClient(Settings.load(home=str(tmp_path / "h"), db_url=db_url))
    with client.start_run("eta", params={"p0": "3", "p1": "three", "p2": 7}) as run:
        pass
    db = client.repo.db
    with db.write() as conn:  # as a store written before numeric text had a number
        conn.execute(text("UPDATE params SET num = NULL WHERE vtype = 'str'"))
        conn.execute(text("UPDATE alembic_version SET version_num = 'tracking_0003' "
                          "WHERE version_num = 'tracking_0004'"))
    assert client.search_runs("eta", filter="params.p0 = 3").empty
    upgrade(Database(db_url))
    assert client.search_runs("eta", filter="params.p0 = 3")["run_id"].tolist() == [run.run_id]
    assert client.search_runs("eta", filter="params.p2 = 7")["run_id"].tolist() == [run.run_id]
    with db.read() as conn:
        assert conn.execute(text("SELECT num FROM params WHERE key = 'p1'")).scalar() is None
