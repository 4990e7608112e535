"""Serving fixtures: small real models (files and registry versions) and live servers on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mloop.config import Settings
from mloop.registry import RegistryClient, save_model
from mloop.serving import ServeConfig, ServingState, create_serving_app
from tests.conftest import free_port

MODEL = "trips"
ROW = {"hour": 8, "km": 3.5, "weather": "rain"}


def trip_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"hour": rng.integers(0, 24, n), "km": rng.uniform(0.5, 20, n).round(2),
                         "weather": rng.choice(["dry", "rain", "snow"], n)})


def save_trip_model(folder: Path, slope: float) -> Path:
    """A pipeline (one-hot weather + linear) whose answer is about ``slope * km``: versions tell themselves apart."""
    X = trip_frame()
    y = slope * X["km"] + 0.1 * X["hour"] + X["weather"].map({"dry": 0.0, "rain": 1.0, "snow": 2.0})
    model = Pipeline([("prep", ColumnTransformer([("w", OneHotEncoder(handle_unknown="ignore"), ["weather"])],
                                                 remainder="passthrough")), ("lr", LinearRegression())])
    save_model(model.fit(X, y), folder, input_example=X.head(5), training_data=X)  # X has no null
    return folder


class SlowModel:
    """A model that sleeps before answering (the breaker's injected slowness)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        time.sleep(self.seconds)
        return np.asarray(frame["km"], dtype=float) * 2


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings.load(home=str(home))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return save_trip_model(tmp_path / "model-v1", slope=2.0)


@pytest.fixture
def registry(settings: Settings, tmp_path: Path) -> RegistryClient:
    """A registry with trips v1 (slope 2, alias champion) and v2 (slope 3, alias challenger)."""
    client = RegistryClient(settings)
    for version, slope in ((1, 2.0), (2, 3.0)):
        client.register(MODEL, save_trip_model(tmp_path / f"reg-v{version}", slope))
    client.set_alias(MODEL, "champion", 1)
    client.set_alias(MODEL, "challenger", 2)
    return client


@dataclass
class Served:
    url: str
    state: ServingState

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=30, **kwargs) if body is not None else \
            httpx.post(self.url + path, timeout=30, **kwargs)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)


def wait_ready(url: str, proc: subprocess.Popen[Any] | None = None, timeout: float = 60,
               path: str = "/health/ready") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never became ready")


@contextmanager
def running(config: ServeConfig, settings: Settings, client: Any = None, until: str = "/health/ready",
            ) -> Iterator[Served]:
    """The serving app under uvicorn in a thread, on a free port, once ``until`` answers 200 (ready; pass
    ``/health/live`` for a server that may never be ready); shut down gracefully at the end."""
    app = create_serving_app(config, settings, client)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, path=until)
    try:
        yield Served(url, app.state.serving)
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def serve_process(args: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``mloop serve ARGS`` as a real process; stopped with SIGTERM (a graceful shutdown) at the end."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "serve", *args, "--port", str(port)],
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
