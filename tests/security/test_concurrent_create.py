"""Creating the same model or experiment from eight writers at once on PostgreSQL: every writer succeeds."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression

from mloop.config import Settings
from mloop.registry import RegistryClient, save_model
from mloop.tracking.client import TrackingClient

WRITERS = 8


def all_at_once(work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``work(i)`` in WRITERS threads released together; their results and errors."""
    gate = threading.Barrier(WRITERS)
    results: list[Any] = []
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        gate.wait()
        try:
            results.append(work(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results, errors


def test_registering_one_new_model_from_eight_writers(postgres_url: str, tmp_path: Path) -> None:
    X = np.arange(20, dtype=float).reshape(-1, 1)
    folder = tmp_path / "model"
    save_model(LinearRegression().fit(X, 2 * X[:, 0]), folder)
    clients = [RegistryClient(Settings.load(home=str(tmp_path / "home"), db_url=postgres_url)) for _ in range(WRITERS)]
    for round_ in range(3):  # a few rounds: each one races on a model that does not exist yet
        name = f"race-{round_}"
        versions, errors = all_at_once(lambda i, name=name: clients[i].register(name, folder).version)
        assert errors == [], [repr(e) for e in errors]
        assert sorted(versions) == list(range(1, WRITERS + 1))
        created = [e for e in clients[0].audit(name) if e.action == "model.created"]
        assert len(created) == 1


def test_starting_runs_in_one_new_experiment_from_eight_writers(postgres_url: str, tmp_path: Path) -> None:
    clients = [TrackingClient(Settings.load(home=str(tmp_path / "home"), db_url=postgres_url)) for _ in range(WRITERS)]
    experiments, errors = all_at_once(lambda i: clients[i].get_or_create_experiment("race").experiment_id)
    assert errors == [], [repr(e) for e in errors]
    assert len(set(experiments)) == 1


def test_creating_one_model_from_eight_writers_makes_one_and_tells_the_others(postgres_url: str,
                                                                             tmp_path: Path) -> None:
    from mloop.errors import AlreadyExistsError

    clients = [RegistryClient(Settings.load(home=str(tmp_path / "home"), db_url=postgres_url)) for _ in range(WRITERS)]
    for round_ in range(3):
        made, errors = all_at_once(lambda i, name=f"made-{round_}": clients[i].create_model(name).name)
        assert len(made) == 1
        assert len(errors) == WRITERS - 1 and all(isinstance(e, AlreadyExistsError) for e in errors), errors
