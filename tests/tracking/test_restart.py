"""Calls through ``mloop server`` outlive a server restart: a run that finishes ends FINISHED, once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mloop.config import Settings
from mloop.tracking import RunStatus, TrackingClient
from tests.tracking.serverproc import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "server")
    proc.start()
    yield proc
    proc.stop()


def _while_restarting(server: ServerProcess, call: Callable[[], object]) -> None:
    """Make ``call`` while the server is down (killed -9, back in a moment)."""
    server.kill()
    thread = threading.Thread(target=lambda: (time.sleep(0.3), server.start()), daemon=True)
    thread.start()
    call()
    thread.join(60)


def test_params_tags_artifacts_and_end_of_run_go_through_restarts(server: ServerProcess, tmp_path: Path) -> None:
    client = TrackingClient(Settings.load(home=str(tmp_path / "h"), tracking_uri=server.url))
    run = client.start_run("restart", name="survivor")
    run.log_metric("loss", 1.0, step=0)
    run.flush()
    _while_restarting(server, lambda: run.log_params({"lr": 0.1, "depth": 4}))
    _while_restarting(server, lambda: run.set_tags({"stage": "done"}))
    # a file body: rewound for each attempt
    _while_restarting(server, lambda: run.log_text("all good\n" * 1000, "notes/report.txt"))
    run.log_metric("loss", 0.5, step=1)
    _while_restarting(server, run.end)
    stored = client.get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED
    assert stored.params == {"lr": 0.1, "depth": 4}
    assert stored.tags["stage"] == "done"
    assert [m.step for m in client.metric_history(run.run_id, "loss")] == [0, 1]
    client.download_artifacts(run.run_id, "notes/report.txt", tmp_path / "report.txt")
    assert (tmp_path / "report.txt").read_text() == "all good\n" * 1000


def test_retries_are_bounded(server: ServerProcess, tmp_path: Path) -> None:
    """A server that stays down costs a caller at most ``retry_seconds`` and a clear error."""
    from mloop.errors import BackendError
    from mloop.tracking._http import HttpTrackingRepository

    repo = HttpTrackingRepository(server.url, retry_seconds=1.0)
    experiment = repo.create_experiment("bounded")
    server.kill()
    started = time.monotonic()
    with pytest.raises(BackendError, match="did not answer"):
        repo.create_run(experiment.experiment_id, None, "me", {}, None, "")
    assert time.monotonic() - started < 5  # the backoff is bounded by retry_seconds


def test_a_batch_whose_answer_was_lost_is_stored_once(tmp_path: Path) -> None:
    """The server commits a batch, the connection drops before the answer, the client retries: one copy."""
    from tests.server.conftest import serve
    from tests.tracking.lossyproxy import LossyProxy

    for live in serve(Settings.load(home=str(tmp_path / "server"))):
        port = int(live.url.rsplit(":", 1)[1])
        proxy = LossyProxy(port, b"POST /api/metrics/batch", drops=2)
        client = TrackingClient(Settings.load(home=str(tmp_path / "h"), tracking_uri=proxy.url))
        with client.start_run("lossy") as run:
            for step in range(1000):
                run.log_metric("loss", 1.0 / (step + 1), step=step)
        proxy.close()
        assert proxy.dropped == 2
        direct = TrackingClient(Settings.load(home=str(tmp_path / "h2"), tracking_uri=live.url))
        assert [m.step for m in direct.metric_history(run.run_id, "loss")] == list(range(1000))


def test_503_is_retried_for_idempotent_calls_only(tmp_path: Path) -> None:
    from mloop.errors import MloopError
    from tests.server.conftest import serve
    from tests.tracking.lossyproxy import LossyProxy

    for live in serve(Settings.load(home=str(tmp_path / "server"))):
        port = int(live.url.rsplit(":", 1)[1])
        client = TrackingClient(Settings.load(home=str(tmp_path / "h"), tracking_uri=live.url))
        with client.start_run("busy") as run:
            tags = LossyProxy(port, f"POST /api/runs/{run.run_id}/tags".encode(), unavailable=2)
            through = TrackingClient(Settings.load(home=str(tmp_path / "h2"), tracking_uri=tags.url))
            through.repo.set_tags(run.run_id, {"stage": "busy"})
            assert tags.refused == 2 and client.get_run(run.run_id).tags["stage"] == "busy"
            runs = LossyProxy(port, b"POST /api/runs ", unavailable=1)
            creator = TrackingClient(Settings.load(home=str(tmp_path / "h3"), tracking_uri=runs.url))
            created = creator.repo.create_run(run.experiment_id, "once", "me", {}, None, "")  # its id makes it safe
            assert runs.refused == 1 and created.name == "once"
            beats = LossyProxy(port, b"POST /api/heartbeat", unavailable=1)
            beater = TrackingClient(Settings.load(home=str(tmp_path / "h4"), tracking_uri=beats.url))
            with pytest.raises(MloopError, match="503"):  # never retried: the next beat is the retry
                beater.repo.heartbeat([run.run_id])
            assert beats.refused == 1
            beats.close()
            tags.close()
            runs.close()


def test_a_run_whose_creation_answer_was_lost_is_created_once(tmp_path: Path) -> None:
    """The server creates the run, the connection drops before the answer, the client retries: one run."""
    from tests.server.conftest import serve
    from tests.tracking.lossyproxy import LossyProxy

    for live in serve(Settings.load(home=str(tmp_path / "server"))):
        port = int(live.url.rsplit(":", 1)[1])
        direct = TrackingClient(Settings.load(home=str(tmp_path / "h"), tracking_uri=live.url))
        experiment = direct.repo.create_experiment("lost-answer")
        proxy = LossyProxy(port, b"POST /api/runs ", drops=1)
        client = TrackingClient(Settings.load(home=str(tmp_path / "h2"), tracking_uri=proxy.url))
        run = client.repo.create_run(experiment.experiment_id, "only-one", "me", {}, None, "")
        proxy.close()
        assert proxy.dropped == 1
        found = direct.search_runs("lost-answer")
        assert list(found["run_id"]) == [run.run_id]


def test_a_chosen_run_id_is_idempotent_and_checked(tmp_path: Path) -> None:
    from mloop.errors import ConflictError, InvalidInputError

    client = TrackingClient(Settings.load(home=str(tmp_path / "h")))
    first = client.repo.create_experiment("chosen")
    other = client.repo.create_experiment("elsewhere")
    run_id = "ab" * 16
    made = client.repo.create_run(first.experiment_id, "a", "me", {}, None, "", run_id=run_id)
    again = client.repo.create_run(first.experiment_id, "a", "me", {}, None, "", run_id=run_id)
    assert made.run_id == again.run_id == run_id and len(client.search_runs("chosen")) == 1
    with pytest.raises(ConflictError):
        client.repo.create_run(other.experiment_id, "b", "me", {}, None, "", run_id=run_id)
    with pytest.raises(InvalidInputError) as caught:
        client.repo.create_run(first.experiment_id, "c", "me", {}, None, "", run_id="../etc")
    assert caught.value.field == "run_id"


def test_an_experiment_whose_creation_answer_was_lost_is_found(tmp_path: Path) -> None:
    from tests.server.conftest import serve
    from tests.tracking.lossyproxy import LossyProxy

    for live in serve(Settings.load(home=str(tmp_path / "server"))):
        proxy = LossyProxy(int(live.url.rsplit(":", 1)[1]), b"POST /api/experiments", drops=1)
        client = TrackingClient(Settings.load(home=str(tmp_path / "h"), tracking_uri=proxy.url))
        with client.start_run("made-once") as run:
            run.log_param("a", 1)
        proxy.close()
        assert proxy.dropped == 1
        assert [e.name for e in client.repo.list_experiments()].count("made-once") == 1
