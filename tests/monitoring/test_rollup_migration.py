"""A database whose windows were stored before roll-ups existed gets them on upgrade, the same as a refresh."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import insert, select, text

from mloop.config import Settings
from mloop.monitoring import create_monitor
from mloop.monitoring._tables import monitor_rollups, monitor_series
from mloop.monitoring.rollup import refresh_rollups
from mloop.store.sql import migrate, open_database


def _rollups(db) -> dict[tuple, float]:  # type: ignore[no-untyped-def]
    with db.read() as conn:
        return {tuple(r[:-1]): r[-1] for r in conn.execute(select(monitor_rollups)).all()}


def test_upgrading_rolls_up_the_windows_already_stored(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    settings = Settings.load(home=str(tmp_path / "home"), db_url=url)
    create_monitor("five", "eta", window="5m", settings=settings)
    create_monitor("ninety", "eta", window="90m", settings=settings)  # longer than an hour: its own buckets
    rng = np.random.default_rng(4)
    db = open_database(url)
    rows = []
    for name, step in (("five", 300_000), ("ninety", 5_400_000)):
        for start in 1_772_928_000_000 + np.arange(2 * 86_400_000 // step) * step:
            for metric, column in (("rows", ""), ("latency_p99", ""), ("null_share", "km"), ("drift_effect", "km")):
                rows.append({"monitor": name, "start": int(start), "version": "1", "role": "primary",
                             "metric": metric, "column": column, "slice": "", "value": float(rng.gamma(2.0, 3.0))})
    with db.write() as conn:
        conn.execute(insert(monitor_series), rows)
    for name in ("five", "ninety"):
        refresh_rollups(name, settings=settings)
    expected = _rollups(db)
    assert len(expected) == 4 * (2 * 24 + 2) + 4 * (32 + 2)  # 5m: hours and days; 90m: its windows and days

    with db.write() as conn:  # the database as monitoring_0001 left it
        conn.execute(text("DROP TABLE monitor_rollups"))
        conn.execute(text("UPDATE alembic_version SET version_num = 'monitoring_0001' "
                          "WHERE version_num = 'monitoring_0002'"))
    assert not migrate._at_heads(db)
    migrate.upgrade(db)
    upgraded = _rollups(db)
    assert set(upgraded) == set(expected)
    for key, value in expected.items():
        assert upgraded[key] == pytest.approx(value, rel=1e-12), key
