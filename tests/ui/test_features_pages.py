"""The feature store's pages: the catalog searched by name, tag and entity (the search is in the URL), and a
feature view's definition, versions, the freshness of its online data and its statistics; markup in a
description or tag stays text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.config import Settings
from tests.server.conftest import serve
from tests.ui.conftest import XSS, Browser

NOW = pd.Timestamp.now(tz="UTC").floor("s")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from mloop.features import Entity, FeatureStore, FeatureView, Field, FileSource, Float64, Int64, String

    home: Path = tmp_path_factory.mktemp("features-home")
    rng = np.random.default_rng(5)
    zones, drivers = home / "zones", home / "drivers"
    zones.mkdir()
    drivers.mkdir()
    fares = rng.gamma(3, 4, 40)
    fares[::8] = np.nan  # 12.5% missing
    pd.DataFrame({"zone_id": np.arange(40) % 8, "avg_fare": fares, "trips_1h": rng.integers(0, 30, 40),
                  "event_timestamp": [NOW - pd.Timedelta(minutes=10 * i) for i in range(40)]}
                 ).to_parquet(zones / "p.parquet")
    pd.DataFrame({"driver_id": [1, 2, 3], "rating": ["gold", None, "silver"],
                  "event_timestamp": [NOW - pd.Timedelta(hours=2)] * 3}).to_parquet(drivers / "p.parquet")
    settings = Settings.load(home=str(home / "home"), tracking_uri="")
    zone, driver = Entity("zone", join_keys=["zone_id"]), Entity("driver", join_keys=["driver_id"])
    store = FeatureStore(settings=settings)
    stats = dict(entities=[zone], source=FileSource(str(zones)), ttl=timedelta(hours=6), tags={"team": "pricing"})
    store.apply([zone, driver, FeatureView("zone_stats", schema=[Field("avg_fare", Float64)], **stats)])
    store.apply([FeatureView("zone_stats", schema=[Field("avg_fare", Float64), Field("trips_1h", Int64)],
                             description=XSS, **stats),
                 FeatureView("driver_rating", entities=[driver], schema=[Field("rating", String)],
                             source=FileSource(str(drivers)), tags={"note": XSS})])
    store.materialize(end=NOW + pd.Timedelta(seconds=1))
    for live in serve(settings):
        yield live.url


def test_catalog_search_by_name_tag_and_entity(catalog: str, browser: Browser) -> None:
    page = browser.open(f"{catalog}/features")
    names = lambda: page.locator("table.definitions tbody tr td:first-child").all_inner_texts()  # noqa: E731
    assert {"zone_stats", "driver_rating", "zone", "driver"} <= set(names())
    assert XSS in page.locator("table.definitions").inner_text()
    page.fill("input[name=tag]", "team=pricing")
    page.click("form.filter button")
    browser.until("() => document.querySelectorAll('table.definitions tbody tr').length === 1")
    assert names() == ["zone_stats"] and "tag=team%3Dpricing" in page.url
    browser.shot("features")
    page.goto(f"{catalog}/features?entity=driver")  # a shared search opens as it was
    page.wait_for_selector("main[data-state=ready]")
    assert sorted(names()) == ["driver", "driver_rating"]  # the entity and what is keyed by it
    assert page.evaluate("document.body.dataset.pwned") is None
    assert not browser.problems, browser.problems


def test_a_feature_view_shows_its_versions_freshness_and_statistics(catalog: str, browser: Browser) -> None:
    page = browser.open(f"{catalog}/features/zone_stats")
    assert page.locator("h1").inner_text() == "zone_stats" and page.locator(".description").inner_text() == XSS
    assert page.locator(".versions a").all_inner_texts() == ["v1", "v2"]
    online = page.locator("section", has=page.locator("h2", has_text="Online data"))
    assert "Materialized up to" in online.inner_text() and "older than" not in online.inner_text()
    rows = {r.split("\t")[0]: r.split("\t") for r in online.locator("table.statistics tbody tr").all_inner_texts()}
    assert set(rows) == {"avg_fare", "trips_1h"} and rows["avg_fare"][2] != "0.0%"
    assert "trips_1h" in page.locator("section", has=page.locator("h2", has_text="Features")).inner_text()
    browser.shot("feature-view")
    page.click(".versions a:text('v1')")
    browser.until("() => document.querySelector('.facts b')?.textContent === 'v1'")
    assert "trips_1h" not in page.locator("section", has=page.locator("h2", has_text="Features")).inner_text()
    assert page.evaluate("document.body.dataset.pwned") is None
    assert not browser.problems, browser.problems
