"""Demo step: zone-level and hourly weather features over the trips, a point-in-time training set,
materialization to the online store, and online reads for a few zones."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from rich.table import Table

from mloop.demo.runner import DemoContext
from mloop.features import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Float64,
    Int64,
    OnDemandFeatureView,
)

SERVICE = "trip-duration-features"


def zone_daily(trips: pd.DataFrame) -> pd.DataFrame:
    """Per zone and day: trips, mean duration and speed; known at the end of the day (no leakage)."""
    day = trips["event_timestamp"].dt.floor("D")
    speed = trips["distance_km"] / (trips["duration_min"] / 60)
    out = (trips.assign(day=day, speed=speed).groupby(["zone_id", "day"])
           .agg(trips_1d=("trip_id", "size"), avg_duration_1d=("duration_min", "mean"),
                avg_speed_kmh_1d=("speed", "mean")).reset_index())
    out["event_timestamp"] = out.pop("day") + pd.Timedelta(days=1)
    out["trips_1d"] = out["trips_1d"].astype("int64")
    return out


def hourly_weather(trips: pd.DataFrame) -> pd.DataFrame:
    """One row per calendar hour: the weather, as a rain/snow flag (known at the start of the hour)."""
    hour = trips["event_timestamp"].dt.floor("h")
    weather = trips.assign(event_timestamp=hour).groupby("event_timestamp")["weather"].first().reset_index()
    weather["region_id"] = 1
    weather["wet"] = weather.pop("weather").isin(["rain", "snow"]).astype("float64")
    return weather


def definitions(folder: Path) -> list:  # type: ignore[type-arg]
    zone = Entity("zone", join_keys=["zone_id"], key_types=[Int64], description="A pickup zone")
    region = Entity("region", join_keys=["region_id"], key_types=[Int64], description="The city")
    daily = FeatureView(
        "zone_daily", entities=[zone], source=FileSource(str(folder / "zone_daily")), ttl=timedelta(days=3),
        schema=[Field("trips_1d", Int64), Field("avg_duration_1d", Float64), Field("avg_speed_kmh_1d", Float64)],
        description="Trips, mean duration and mean speed per zone over the previous day", owner="demo",
        tags={"team": "eta"})
    weather = FeatureView(
        "weather_hourly", entities=[region], source=FileSource(str(folder / "weather")), ttl=timedelta(hours=2),
        schema=[Field("wet", Float64)], description="Rain or snow in the current hour", owner="demo",
        tags={"team": "eta"})

    def expected_minutes(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"expected_min": df["distance_km"] / df["avg_speed_kmh_1d"] * 60})

    eta = OnDemandFeatureView("trip_eta", inputs=["zone_daily:avg_speed_kmh_1d"],
                              request=[Field("distance_km", Float64)], schema=[Field("expected_min", Float64)],
                              function=expected_minutes, description="Distance over the zone's recent speed")
    service = FeatureService(SERVICE, features=["zone_daily", "weather_hourly:wet", "trip_eta"],
                             description="What the trip-duration model reads")
    return [zone, region, daily, weather, eta, service]


def run(ctx: DemoContext) -> None:
    folder = ctx.home / "feature-data"
    for name, frame in (("zone_daily", zone_daily(ctx.trips)), ("weather", hourly_weather(ctx.trips))):
        (folder / name).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(folder / name / "part-0.parquet", index=False)
    store = FeatureStore(project="demo", settings=ctx.settings)
    print_plan = store.apply(definitions(folder))
    ctx.console.print(str(print_plan), highlight=False)

    entity_df = ctx.train[["trip_id", "zone_id", "event_timestamp", "distance_km", "duration_min"]].assign(region_id=1)
    with ctx.client.start_run("feature-store-demo", name="feature-training-set", capture_environment=False) as run:
        train = store.training_set(entity_df, service=SERVICE)
    nulls = int(train["avg_duration_1d"].isna().sum())
    ctx.console.print(f"training set: {len(train):,} rows x {train.shape[1]} columns through service {SERVICE} "
                      f"({nulls:,} rows without zone history inside the TTL keep nulls); recorded as an input of "
                      f"run {run.run_id[:8]}")
    corr = train[["expected_min", "duration_min"]].corr().iloc[0, 1]
    ctx.console.print(f"on-demand feature expected_min correlates {corr:.2f} with the actual duration")

    end = ctx.trips["event_timestamp"].max().ceil("D").to_pydatetime()  # "now" at the end of the data
    for result in store.materialize(None, end):
        ctx.console.print(f"materialized {result.view} v{result.version}: {result.rows:,} entities in "
                          f"{result.seconds * 1000:.0f} ms")
    zones = [3, 17, 42]
    refs = ["zone_daily:trips_1d", "zone_daily:avg_duration_1d", "zone_daily:avg_speed_kmh_1d"]
    online = store.online(refs, entities={"zone_id": zones}, as_of=end)
    table = Table(title=f"online features for 3 zones as of {end:%Y-%m-%d %H:%M} UTC (TTL 3 days)")
    for column in ("zone", "trips last day", "avg min", "avg km/h", "as of", "status"):
        table.add_column(column, justify="right")
    for i, zone in enumerate(zones):
        when = online.event_times["zone_daily"][i]
        table.add_row(str(zone), str(online.values["trips_1d"][i]), _fmt(online.values["avg_duration_1d"][i]),
                      _fmt(online.values["avg_speed_kmh_1d"][i]), f"{when:%Y-%m-%d}" if when else "-",
                      online.status["zone_daily"][i])
    ctx.console.print(table)
    today = store.online(refs, entities={"zone_id": zones})
    ctx.console.print(f"read today instead, the same rows are older than the TTL: status {today.status['zone_daily']}"
                      f", values {today.values['avg_duration_1d']}")
    ctx.state["feature_store"] = {"project": "demo", "service": SERVICE, "training_rows": len(train)}
    ctx.console.print("Look next: [bold]mloop features list --project demo[/], "
                      "[bold]mloop features describe zone_daily --project demo[/].")
    store.close()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
