"""The built-in ride-hailing data set: deterministic, seeded, a few months of trips.

Trips have a UTC timestamp, a pickup zone, the hour of day (0-23), the weather,
the distance, the duration and the fare. In the last month behaviour changes
(more rain, slower traffic, longer trips), so drift work has something to find.

>>> trips = ride_hailing(n_trips=1000)
>>> sorted(trips.columns)[:4]
['distance_km', 'duration_min', 'event_timestamp', 'fare']
>>> int(trips["hour"].between(0, 23).all())
1
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ZONES = 50
WEATHER = ["clear", "cloudy", "rain", "snow"]
START = pd.Timestamp("2026-01-01", tz="UTC")


def ride_hailing(n_trips: int = 60_000, months: int = 4, seed: int = 7) -> pd.DataFrame:
    """Generate ``n_trips`` trips over ``months`` months; the last month is shifted."""
    rng = np.random.default_rng(seed)
    span = pd.Timedelta(days=30 * months)
    seconds = np.sort(rng.integers(0, int(span.total_seconds()), n_trips))
    ts = START + pd.to_timedelta(seconds, unit="s")
    shifted = seconds >= int((span - pd.Timedelta(days=30)).total_seconds())
    hour = ts.hour.to_numpy()
    zone = rng.integers(1, ZONES + 1, n_trips)
    weather = _hourly_weather(rng, seconds, shift_start=int((span - pd.Timedelta(days=30)).total_seconds()))
    distance = rng.gamma(2.0, 2.2, n_trips) * np.where(shifted, 1.25, 1.0) + 0.3
    rush = np.isin(hour, [7, 8, 9, 16, 17, 18]).astype(float)
    zone_speed = 22 + 10 * np.sin(zone / ZONES * np.pi)
    speed = zone_speed * (1 - 0.3 * rush) * (1 - 0.12 * weather) * np.where(shifted, 0.8, 1.0)
    duration = distance / np.maximum(speed, 5) * 60 + rng.normal(0, 2.0, n_trips) + 2
    duration = np.clip(duration, 1, None)
    fare = 2.5 + 1.2 * distance + 0.35 * duration + rng.normal(0, 1.0, n_trips)
    return pd.DataFrame({
        "trip_id": np.arange(1, n_trips + 1),
        "event_timestamp": ts,
        "zone_id": zone.astype("int64"),
        "hour": hour.astype("int64"),
        "weather": pd.Categorical.from_codes(weather, WEATHER).astype(str),
        "distance_km": distance.round(3),
        "duration_min": duration.round(2),
        "fare": fare.round(2),
    })


def _hourly_weather(rng: np.random.Generator, seconds: np.ndarray, shift_start: int) -> np.ndarray:
    """One weather per hour of the calendar (every trip in that hour shares it); wetter after the shift."""
    hour_index = seconds // 3600
    hours = int(hour_index.max()) + 1 if len(hour_index) else 1
    after = (np.arange(hours) * 3600) >= shift_start
    probs = np.where(after[:, None], [0.35, 0.25, 0.3, 0.1], [0.55, 0.3, 0.12, 0.03])
    by_hour = (rng.random(hours)[:, None] > probs.cumsum(axis=1)).sum(axis=1)
    return by_hour[hour_index]


def split_by_time(trips: pd.DataFrame, validation_days: int = 14) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, validation, last month): the last 30 days are the shifted, "live" period."""
    end = trips["event_timestamp"].max()
    live_start = end - pd.Timedelta(days=30)
    valid_start = live_start - pd.Timedelta(days=validation_days)
    train = trips[trips["event_timestamp"] < valid_start]
    valid = trips[(trips["event_timestamp"] >= valid_start) & (trips["event_timestamp"] < live_start)]
    live = trips[trips["event_timestamp"] >= live_start]
    return train.reset_index(drop=True), valid.reset_index(drop=True), live.reset_index(drop=True)
