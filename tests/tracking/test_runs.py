"""Runs against SQLite and PostgreSQL: lifecycle, params, metrics, tags, nesting, moving."""

from __future__ import annotations

import math

import pytest

from mloop.errors import ConflictError, InvalidInputError, NotFoundError
from mloop.tracking import RunStatus, TrackingClient


def test_run_lifecycle_and_values(client: TrackingClient) -> None:
    with client.start_run("eta", name="first", params={"lr": 0.1, "layers": 3, "model": "ridge", "flag": True},
                          tags={"team": "maps"}) as run:
        for step in range(10):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("weird", math.nan)
        run.log_metric("big", math.inf)
        run.log_metric("small", -math.inf)
    stored = client.get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED
    assert stored.end_time is not None and stored.end_time >= stored.start_time
    assert stored.params == {"lr": 0.1, "layers": 3, "model": "ridge", "flag": True}
    assert type(stored.params["layers"]) is int and type(stored.params["flag"]) is bool
    assert stored.metrics["loss"] == pytest.approx(0.1)
    assert math.isnan(stored.metrics["weird"])
    assert stored.metrics["big"] == math.inf and stored.metrics["small"] == -math.inf
    assert stored.tags["team"] == "maps"
    assert "mloop.python" in stored.tags and "mloop.command" in stored.tags
    history = client.metric_history(run.run_id, "loss")
    assert [m.step for m in history] == list(range(10))
    assert history[3].value == pytest.approx(0.25)


def test_failed_block_marks_run_failed(client: TrackingClient) -> None:
    with pytest.raises(RuntimeError), client.start_run("eta") as run:
        run.log_metric("x", 1.0)
        raise RuntimeError("boom")
    stored = client.get_run(run.run_id)
    assert stored.status is RunStatus.FAILED
    assert stored.metrics["x"] == 1.0


def test_keyboard_interrupt_marks_run_killed(client: TrackingClient) -> None:
    with pytest.raises(KeyboardInterrupt), client.start_run("eta") as run:
        raise KeyboardInterrupt
    assert client.get_run(run.run_id).status is RunStatus.KILLED


def test_changing_a_param_names_both_values(client: TrackingClient) -> None:
    with client.start_run("eta", params={"lr": 0.1}) as run:
        run.log_param("lr", 0.1)  # same value again is fine
        with pytest.raises(ConflictError, match=r"'lr'.*0\.1.*0\.2"):
            run.log_param("lr", 0.2)
    assert client.get_run(run.run_id).params["lr"] == 0.1


def test_many_params_in_one_call_are_chunked(client: TrackingClient) -> None:
    params = {f"p{i}": i for i in range(1500)}
    with client.start_run("eta", params=params) as run:
        pass
    assert client.get_run(run.run_id).params == params


def test_bad_metric_values_are_rejected_with_the_field(client: TrackingClient) -> None:
    with client.start_run("eta") as run:
        with pytest.raises(InvalidInputError, match="metrics.acc"):
            run.log_metric("acc", "high")
        with pytest.raises(InvalidInputError, match="step"):
            run.log_metric("acc", 1.0, step=1.5)
        with pytest.raises(InvalidInputError, match="metric key"):
            run.log_metric("", 1.0)


def test_the_latest_value_of_a_large_batch_is_its_highest_step_then_time_then_the_last_logged(
        client: TrackingClient) -> None:
    """A batch is stored in several statements, each finding its own latest points; the batch's are theirs."""
    with client.start_run("eta") as run:
        rows = [(run.run_id, "late", float(step), step, 1_000) for step in range(60_000, 0, -1)]  # highest first
        tie, filler = (run.run_id, "tie", 1.0, 7, 5), [(run.run_id, "tie", 0.0, 1, 9)] * 40_000
        rows += [tie, *filler, (run.run_id, "tie", 2.0, 7, 5)]  # the same step and time: the last logged wins
        rows += [(run.run_id, "time", 3.0, 3, 50), *[(run.run_id, "time", 0.0, 3, 10)] * 40_000]
        client.repo.log_metrics(rows)
        client.repo.log_metrics([(run.run_id, "late", -1.0, 5, 2_000)])  # a lower step later changes nothing
    assert client.get_run(run.run_id).metrics == {"late": 60_000.0, "tie": 2.0, "time": 3.0}


def test_a_nul_in_a_metric_key_is_refused_by_the_store_too(client: TrackingClient) -> None:
    """Points that reach the repository without the SDK's key check (a flow task's metrics) are checked there."""
    with client.start_run("eta") as run:
        rows = [(run.run_id, "loss", 0.5, step, 1_700_000_000_000) for step in range(20_000)]
        with pytest.raises(InvalidInputError, match="metric key"):
            client.repo.log_metrics([*rows, (run.run_id, "lo\x00ss", 1.0, 0, 0)])
        assert client.metric_history(run.run_id, "loss") == []  # the batch is refused whole
        client.repo.log_metrics(rows)
    assert len(client.metric_history(run.run_id, "loss")) == 20_000


def test_nested_runs_and_move(client: TrackingClient) -> None:
    with client.start_run("eta", name="parent") as parent:
        with client.start_run(name="child") as child:
            pass
        explicit = parent.start_run(name="explicit-child")
        explicit.end()
    assert client.get_run(child.run_id).parent_run_id == parent.run_id
    assert client.get_run(explicit.run_id).parent_run_id == parent.run_id
    client.create_experiment("other")
    client.move_run(child.run_id, "other")
    assert client.get_run(child.run_id).experiment_id == client.get_experiment("other").experiment_id


def test_unknown_run_is_not_found(client: TrackingClient) -> None:
    with pytest.raises(NotFoundError, match="No run with id 'nope'"):
        client.get_run("nope")


def test_downsampled_history_keeps_extremes(client: TrackingClient) -> None:
    with client.start_run("eta") as run:
        for step in range(5000):
            run.log_metric("noisy", 100.0 if step == 1234 else (-50.0 if step == 4321 else 0.0), step=step)
    points = client.metric_history(run.run_id, "noisy", max_points=100)
    assert len(points) <= 100
    values = [p.value for p in points]
    assert 100.0 in values and -50.0 in values
    assert points[0].step == 0 and points[-1].step == 4999
