"""The demo's Continuous training step on small data: drift on the served model fires a rule that retrains the
demo's flow on fresh data, gates, shadows and promotes the challenger on a real server that answers every
request, and the timeline is printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mloop.config import Settings
from mloop.demo import continuous
from mloop.demo.data import ride_hailing, split_by_time
from mloop.demo.runner import DemoContext
from mloop.demo.tracking import TARGET, features
from mloop.registry import RegistryClient, save_model
from mloop.tracking import TrackingClient
from mloop.validation import attach_to_model_version


@pytest.mark.timeout(600)
def test_drift_retrains_gates_shadows_and_promotes_while_serving(tmp_path: Path) -> None:
    settings = Settings.load(home=str(tmp_path / "home"), tracking_uri="")
    trips = ride_hailing(n_trips=4000)
    train, valid, live = split_by_time(trips)
    registry = RegistryClient(settings)
    model = Pipeline([("prep", ColumnTransformer([("w", OneHotEncoder(handle_unknown="ignore"), ["weather"])],
                                                 remainder="passthrough")), ("m", LinearRegression())])
    model.fit(features(train), train[TARGET])
    save_model(model, tmp_path / "v1", input_example=features(train).head(5), training_data=features(train))
    registry.register("trip-duration", tmp_path / "v1")
    registry.set_alias("trip-duration", "champion", 1)
    # drift is measured against the training profile stored with the version, as the demo's validation step does
    attach_to_model_version("trip-duration", 1, data=features(train), registry=registry)
    console = Console(record=True, width=220)
    ctx = DemoContext(home=Path(settings.home), console=console, client=TrackingClient(settings), trips=trips,
                      train=train, valid=valid, live=live, state={"model_name": "trip-duration", "session": "t"})
    continuous.run(ctx)
    text = console.export_text()
    assert "automation timeline of trip-duration" in text
    for line in ("event drift", "run_flow done", "evaluate done", "shadow done", "promote done", "notify done",
                 "firing done", "champion: v1 -> v2"):
        assert line in text, line
    assert "drift.share > 0.3 is true" in text
    state = ctx.state["automation"]
    assert state["failed"] == 0 and state["requests"] > 0 and state["champion_after"] == 2
    assert registry.get_alias("trip-duration", "champion").version == 2
    assert registry.get_version("trip-duration", 2).tags["automation.promote"].startswith("retrain-on-drift")
