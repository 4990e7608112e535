"""The outbox is written with the change: a committed change has its event, a refused one has none; feature
definitions applied and materialized are events too."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from mloop.config import Settings
from mloop.errors import AlreadyExistsError, InvalidInputError
from mloop.events import _tables as t
from mloop.events.query import list_deliveries
from mloop.events.worker import DeliveryWorker
from mloop.registry import RegistryClient
from tests.events.conftest import SECRET
from tests.events.receiver import Receiver


def _count(registry: RegistryClient, table) -> int:  # type: ignore[no-untyped-def]
    with registry.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar())


def test_an_event_exists_exactly_when_its_change_was_committed(registry: RegistryClient, receiver: Receiver) -> None:
    hook = registry.webhooks.add(receiver.url, SECRET, events=["model.created", "model.updated"])
    before = _count(registry, t.events)
    registry.create_model("eta", description="arrival times")
    with pytest.raises(AlreadyExistsError):  # refused: rolled back with its event
        registry.create_model("eta")
    with pytest.raises(InvalidInputError):  # refused before any write
        registry.update_model("eta", description="x" * 100_000)
    assert _count(registry, t.events) == before + 1
    [delivery] = list_deliveries(registry.db)
    assert (delivery.event, delivery.subject, delivery.state, delivery.attempts) == ("model.created", "eta",
                                                                                     "pending", 0)
    registry.webhooks.add(receiver.url, SECRET, events=["model.updated"], model="another-model")
    registry.update_model("eta", description="minutes")  # the model filter: only the first webhook hears it
    assert [d.webhook_id for d in list_deliveries(registry.db)] == [hook["id"]] * 2


def test_feature_definitions_applied_and_materialized_reach_the_webhooks(settings: Settings, registry: RegistryClient,
                                                                         receiver: Receiver, tmp_path: Path) -> None:
    from mloop.features import Entity, FeatureStore, Int64
    from tests.features.conftest import ts, zone_view

    registry.webhooks.add(receiver.url, SECRET, events=["features.applied", "features.materialized"])
    rows = pd.DataFrame({"zone_id": [1, 2, 3, 1], "x": [1.0, None, 3.0, 4.0], "event_timestamp": ts(0, 1, 2, 3)})
    store = FeatureStore(settings=settings, project="city")
    store.apply([Entity("zone", join_keys=["zone_id"], key_types=[Int64]), zone_view(tmp_path, rows)])
    store.apply([Entity("zone", join_keys=["zone_id"], key_types=[Int64]), zone_view(tmp_path, rows)])  # unchanged
    store.materialize(end=pd.Timestamp("2026-01-02", tz="UTC").to_pydatetime())
    store.close()
    assert DeliveryWorker(settings).run_until_empty(timeout=20)
    events = receiver.bodies()
    assert [(e["event"], e.get("kind"), e.get("name") or e.get("view")) for e in events] == [
        ("features.applied", "entity", "zone"), ("features.applied", "feature_view", "zone_stats"),
        ("features.materialized", None, "zone_stats")]
    assert events[2]["rows"] == 3 and events[2]["project"] == "city" and events[0]["actor"] == settings.user


def test_bad_input_to_the_outbox_commands_names_the_field(registry: RegistryClient,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from mloop.events.query import retry
    from mloop.events.worker import lease_seconds

    with pytest.raises(InvalidInputError, match="state"):
        list_deliveries(registry.db, "lost")
    with pytest.raises(InvalidInputError, match="id"):
        retry(registry.db, True)  # type: ignore[arg-type]
    monkeypatch.setenv("MLOOP_EVENTS_LEASE_SECONDS", "forever")
    with pytest.raises(InvalidInputError, match="MLOOP_EVENTS_LEASE_SECONDS"):
        lease_seconds()
