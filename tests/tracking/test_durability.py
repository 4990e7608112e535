"""No point lost or doubled: a gone run costs only its own points, a retried batch is stored once."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from mloop.errors import NotFoundError
from mloop.tracking import RunStatus, TrackingClient
from mloop.tracking import _tables as t
from mloop.tracking._sql import SqlTrackingRepository


def _purge_run(client: TrackingClient, run_id: str) -> None:
    client.repo.delete_run(run_id)
    client.repo.purge(older_than_ms=2**62)


def test_a_purged_run_costs_only_its_own_points(client: TrackingClient, caplog: pytest.LogCaptureFixture) -> None:
    live = client.start_run("durable", name="live")
    doomed = client.start_run("durable", name="doomed")
    doomed_id = doomed.run_id
    _purge_run(client, doomed_id)  # as `mloop runs delete` and `mloop gc` from another process would
    with caplog.at_level(logging.WARNING, logger="mloop.tracking"):
        for step in range(3000):
            live.log_metric("loss", step * 0.5, step=step)
            if step % 3 == 0:
                doomed.log_metric("loss", 1.0, step=step)
        live.flush()  # the live run's flush does not raise the other run's loss
        with pytest.raises(NotFoundError):
            doomed.flush()
        for step in range(3000, 3100):  # later points of the gone run are dropped without another round trip
            doomed.log_metric("loss", 1.0, step=step)
            live.log_metric("loss", step * 0.5, step=step)
        live.end()
    with pytest.raises(NotFoundError):  # ending a run that is gone says so
        doomed.end()
    with client.start_run("durable", name="next") as following:  # and does not parent the next run
        following.log_metric("loss", 1.0)
    assert client.get_run(following.run_id).parent_run_id is None
    steps = [m.step for m in client.metric_history(live.run_id, "loss")]
    assert steps == list(range(3100))
    assert client.get_run(live.run_id).status is RunStatus.FINISHED
    warnings = [r for r in caplog.records if doomed_id in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


def test_a_batch_applied_twice_is_stored_once(client: TrackingClient) -> None:
    with client.start_run("durable", name="retry") as run:
        rows = [(run.run_id, "acc", step / 10, step, 1_700_000_000_000 + step) for step in range(1000)]
        client.repo.log_metrics(rows, batch_id="b" * 32)
        client.repo.log_metrics(rows, batch_id="b" * 32)  # the retry of an attempt whose answer was lost
        client.repo.log_metrics(rows[:10], batch_id="c" * 32)
    assert [m.step for m in client.metric_history(run.run_id, "acc")] == sorted([*range(1000), *range(10)])


def test_old_batch_keys_are_pruned(tmp_path) -> None:
    from mloop.config import Settings
    from mloop.tracking import _bulk

    client = TrackingClient(Settings.load(home=str(tmp_path / "h")))
    repo = client.repo
    assert isinstance(repo, SqlTrackingRepository)
    with client.start_run("durable") as run:
        repo.log_metrics([(run.run_id, "m", 1.0, 0, 0)], batch_id="old")
        with repo.db.write() as conn:
            conn.execute(t.metric_batches.update().values(applied=0))
        _bulk._last_prune.clear()
        repo.log_metrics([(run.run_id, "m", 2.0, 1, 0)], batch_id="new")
    with repo.db.read() as conn:
        keys = {r.batch_id for r in conn.execute(select(t.metric_batches))}
        assert conn.execute(select(func.count()).select_from(t.metrics)).scalar() == 2
    assert keys == {"new"}


def test_purge_keeps_other_runs_points_in_flight(client: TrackingClient) -> None:
    """The reported case: delete + gc from elsewhere while two runs of one process log, 3,000 points each."""
    runs = [client.start_run("durable", name=f"r{i}") for i in range(2)]
    for step in range(1000):
        for run in runs:
            run.log_metric("x", float(step), step=step)
    _purge_run(client, runs[0].run_id)
    for step in range(1000, 3000):
        for run in runs:
            run.log_metric("x", float(step), step=step)
    runs[1].end()
    with pytest.raises(NotFoundError):
        runs[0].end()
    assert len(client.metric_history(runs[1].run_id, "x")) == 3000


def test_a_refused_batch_larger_than_one_request_is_not_stored_twice(tmp_path) -> None:
    """Over HTTP a batch goes in requests of 50,000 points: a gone run in a later request must not make the
    writer resend (and so double) the requests already stored."""
    from mloop.config import Settings
    from mloop.tracking.logger import BackgroundWriter
    from tests.server.conftest import serve

    for live in serve(Settings.load(home=str(tmp_path / "server"))):
        client = TrackingClient(Settings.load(home=str(tmp_path / "h"), tracking_uri=live.url))
        experiment = client.create_experiment("big").experiment_id
        kept = client.repo.create_run(experiment, "kept", "me", {}, None, "")
        gone = client.repo.create_run(experiment, "gone", "me", {}, None, "")
        _purge_run(client, gone.run_id)
        writer = BackgroundWriter(client.repo)
        for step in range(60_000):  # queued before the writer starts: one drain sees them all
            writer.append((kept.run_id, "x", 1.0, step, step))
        writer.append((gone.run_id, "x", 1.0, 0, 0))
        writer.flush(run_id=kept.run_id)
        assert [m.step for m in client.metric_history(kept.run_id, "x")] == list(range(60_000))


def test_batches_of_any_length_use_a_few_statement_sizes() -> None:
    """SQLite keeps the statements it prepared per connection: a batch of any length is cut into a few fixed
    sizes, so that flushes of all lengths neither prepare a new statement each nor fill that cache."""
    from mloop.tracking._bulk import _statement_sizes

    seen: set[int] = set()
    for points in range(0, 70_000, 7):
        sizes = _statement_sizes(points, 16_384)
        assert sum(sizes) == points and all(0 < size <= 16_384 for size in sizes)
        assert len(sizes) <= points // 16_384 + 9
        seen.update(sizes)
    assert len(seen) <= 72
    assert _statement_sizes(20_000, 6_553) == [6_553, 6_553, 6_553, 256, 64, 21]  # a build's lower limit
