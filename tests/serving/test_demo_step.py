"""The demo's Serving step on small data: a real server process, a burst, the alias moved under load."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mloop.config import Settings
from mloop.demo import serving
from mloop.demo.data import ride_hailing, split_by_time
from mloop.demo.runner import DemoContext
from mloop.demo.tracking import TARGET, features
from mloop.registry import RegistryClient, save_model
from mloop.serving import read_predictions
from mloop.tracking import TrackingClient
from mloop.validation import attach_to_model_version, infer_schema


def test_serving_step_moves_the_alias_without_a_failed_request(home: Path, tmp_path: Path) -> None:
    settings = Settings.load(home=str(home), tracking_uri="")
    trips = ride_hailing(n_trips=3000)
    train, valid, live = split_by_time(trips)
    registry = RegistryClient(settings)
    for i, estimator in enumerate((LinearRegression(), Ridge(alpha=10.0))):
        model = Pipeline([("prep", ColumnTransformer([("w", OneHotEncoder(handle_unknown="ignore"), ["weather"])],
                                                     remainder="passthrough")), ("m", estimator)])
        model.fit(features(train), train[TARGET])
        save_model(model, tmp_path / f"v{i}", input_example=features(train).head(5), training_data=features(train))
        registry.register("trip-duration", tmp_path / f"v{i}")
    registry.set_alias("trip-duration", "champion", 1)
    attach_to_model_version("trip-duration", 1, schema=infer_schema(features(train)[["hour"]]), registry=registry)
    console = Console(record=True, width=200)
    ctx = DemoContext(home=Path(settings.home), console=console, client=TrackingClient(settings), trips=trips,
                      train=train, valid=valid, live=live, state={"model_name": "trip-duration"})
    serving.run(ctx)
    text = console.export_text()
    assert "4 rejected with 422, 0 server errors" in text and "hour=77 rejected by the training schema" in text
    assert "outside the range [0, 23]" in text and '"error_code": "INVALID_INPUT"' in text
    assert ctx.state["serving"]["failed"] == 0 and ctx.state["serving"]["requests_during_move"] > 0
    assert registry.get_alias("trip-duration", "champion").version == 2
    log = read_predictions(settings, "trip-duration")
    assert set(log["version"]) == {"1", "2"} and log["label"].notna().sum() == 20
    assert len(log) == ctx.state["serving"]["logged"]
