"""Several versions behind one name: A/B split, shadow, micro-batching, cache, breaker, hot reload."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mloop.registry import save_model
from mloop.serving import EndpointConfig, ServeConfig, read_predictions
from tests.serving.conftest import MODEL, ROW, SlowModel, running, trip_frame

CHAMPION = f"models:/{MODEL}@champion"
CHALLENGER = f"models:/{MODEL}@challenger"


def _config(**kwargs) -> ServeConfig:
    reload_seconds = kwargs.pop("reload_seconds", 0)
    trusted = kwargs.pop("trusted", False)
    return ServeConfig(endpoints=(EndpointConfig(name=MODEL, uri=kwargs.pop("uri", CHAMPION), **kwargs),),
                       reload_seconds=reload_seconds, trusted=trusted, log_flush_seconds=0.2)


def test_ab_split_follows_the_weights_and_sticks_to_the_key(settings, registry) -> None:
    with running(_config(ab=((CHALLENGER, 0.3),)), settings, registry) as server, httpx.Client() as http:
        versions = [http.post(server.url + "/predict", json=[ROW], headers={"x-mloop-key": f"user-{i}"})
                    .headers["x-model-version"] for i in range(400)]
        share = versions.count("2") / len(versions)
        # binomial(400, 0.3): sd 0.023; five of them either side
        assert abs(share - 0.3) < 5 * 0.0229, share
        assert set(versions) == {"1", "2"}
        for key in ("user-1", "user-2", "user-3"):
            seen = {http.post(server.url + "/predict", json=[ROW], headers={"x-mloop-key": key})
                    .headers["x-model-version"] for _ in range(8)}
            assert len(seen) == 1, (key, seen)
        unkeyed = [http.post(server.url + "/predict", json=[ROW]).headers["x-model-version"] for _ in range(150)]
        assert 0.3 - 5 * 0.0374 < unkeyed.count("2") / 150 < 0.3 + 5 * 0.0374


def test_sticky_field_routes_by_an_input_value(settings, registry) -> None:
    with running(_config(ab=((CHALLENGER, 0.5),), sticky_field="weather"), settings, registry) as server:
        for weather in ("dry", "rain", "snow"):
            seen = {server.post("/predict", [{**ROW, "weather": weather, "km": km}]).headers["x-model-version"]
                    for km in (1.0, 2.0, 3.0, 4.0, 5.0)}
            assert len(seen) == 1


def test_shadow_answers_are_logged_and_never_returned(settings, registry) -> None:
    rows = trip_frame(40, seed=3).to_dict("records")
    with running(_config(shadow=CHALLENGER), settings, registry) as server:
        answers = [server.post("/predict", [row]) for row in rows]
        assert {r.headers["x-model-version"] for r in answers} == {"1"}
        assert {r.json()["version"] for r in answers} == {"1"}
        deadline = time.monotonic() + 10
        while server.get(f"/models/{MODEL}/shadow").json()["rows"] < len(rows) and time.monotonic() < deadline:
            time.sleep(0.05)
        comparison = server.get(f"/models/{MODEL}/shadow").json()
        ids = [r.json()["ids"][0] for r in answers]
        primary = [r.json()["predictions"][0] for r in answers]
    assert comparison["rows"] == 40 and comparison["primary"] == "1" and comparison["shadow"] == "2"
    assert comparison["agreement"] < 0.5 and comparison["mean_abs_diff"] > 0.4  # slope 3 against slope 2
    assert comparison["shadow_latency_ms"]["p50"] > 0 and comparison["primary_latency_ms"]["p99"] > 0
    log = read_predictions(settings, MODEL)
    shadow = log[log["role"] == "shadow"].set_index("id")
    assert sorted(shadow.index) == sorted(ids) and set(shadow["version"]) == {"2"}
    assert set(log[log["role"] == "primary"]["version"]) == {"1"}
    assert all(float(shadow.loc[i, "output"]) != pytest.approx(p) for i, p in zip(ids, primary, strict=True))


def test_micro_batching_shares_model_calls_and_answers_each_request(settings, model_dir) -> None:
    config = ServeConfig(endpoints=(EndpointConfig(name="m", uri=str(model_dir), max_batch_size=16,
                                                   max_wait_ms=30),), reload_seconds=0)
    rows = trip_frame(48, seed=5).to_dict("records")
    with running(config, settings) as server:
        model = server.state.endpoints["m"].primary.model
        expected = model.predict_columns({c: [r[c] for r in rows] for c in ("hour", "km", "weather")})
        with httpx.Client(limits=httpx.Limits(max_connections=48)) as http, ThreadPoolExecutor(48) as pool:
            got = list(pool.map(lambda r: http.post(server.url + "/predict", json=[r]).json()["predictions"][0],
                                rows))
        metrics = server.get("/metrics").text
    assert got == pytest.approx(expected)
    count = next(line for line in metrics.splitlines() if line.startswith('mloop_batch_size_count{model="m"}'))
    total = next(line for line in metrics.splitlines() if line.startswith('mloop_batch_size_sum{model="m"}'))
    assert float(total.split()[-1]) == 48
    assert int(float(count.split()[-1])) < 48  # fewer model calls than requests


def test_cache_answers_repeated_inputs_until_the_ttl(settings, model_dir) -> None:
    config = ServeConfig(endpoints=(EndpointConfig(name="m", uri=str(model_dir), cache_ttl=2.0),), reload_seconds=0)
    with running(config, settings) as server:
        first = server.post("/predict", [ROW])
        second = server.post("/predict", [ROW])
        other = server.post("/predict", [{**ROW, "km": 9.0}])
        assert "x-mloop-cache" not in first.headers and second.headers["x-mloop-cache"] == "hit"
        assert "x-mloop-cache" not in other.headers
        assert second.json()["predictions"] == first.json()["predictions"]
        assert second.json()["ids"] != first.json()["ids"]
        # the key is the validated input: the same row written with extra fields and another order hits too
        assert server.post("/predict", {"weather": "rain", "note": 1, "km": 3.5, "hour": 8}) \
            .headers.get("x-mloop-cache") == "hit"
        time.sleep(2.1)  # a TTL short enough to wait out, long enough for the four requests under load
        assert "x-mloop-cache" not in server.post("/predict", [ROW]).headers
        assert 'event="cache_hit"} 2' in server.get("/metrics").text
        assert server.get("/models").json()["models"][0]["cache"]["hits"] == 2


def test_breaker_answers_the_fallback_for_a_slow_model(settings, tmp_path) -> None:
    folder = tmp_path / "slow"
    save_model(SlowModel(2.0), folder, flavor="python_function", input_example=trip_frame(2))
    config = ServeConfig(endpoints=(EndpointConfig(name="slow", uri=str(folder), timeout_ms=500, fallback=-1.0,
                                                   breaker_failures=2, breaker_reset=60),
                                    EndpointConfig(name="bare", uri=str(folder), timeout_ms=500)),
                         reload_seconds=0, trusted=True)
    with running(config, settings) as server:
        for _ in range(2):
            started = time.perf_counter()
            r = server.post("/predict/slow", [ROW])
            assert r.status_code == 200 and r.json()["predictions"] == [-1.0] and r.headers["x-mloop-fallback"] == "1"
            assert 0.5 <= time.perf_counter() - started < 1.8  # the timeout answered, not the model (2 s)
        started = time.perf_counter()
        r = server.post("/predict/slow", [ROW, ROW])
        # breaker open: answered at once, without waiting for the model or the timeout (0.5 s)
        assert r.json()["predictions"] == [-1.0, -1.0] and time.perf_counter() - started < 0.45
        state = server.get("/models").json()["models"][0]["breaker"]
        assert state["open"] is True and state["trips"] == 1
        metrics = server.get("/metrics").text
        assert 'event="fallback_timeout"} 2' in metrics and 'event="fallback_breaker_open"} 1' in metrics
        r = server.post("/predict/bare", [ROW])
        assert r.status_code == 503 and r.json()["error_code"] == "MODEL_UNAVAILABLE"


def test_hot_reload_under_load_fails_no_request(settings, registry) -> None:
    stop = threading.Event()
    # (status, version, sent, answered): times, not the order of the list, say what came after the swap, since a
    # loaded machine may pause a client thread between reading its answer and appending it
    results: list[tuple[int, str, float, float]] = []

    def load(url: str) -> None:
        with httpx.Client() as http:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    r = http.post(url + "/predict", json=[ROW], timeout=10)
                    results.append((r.status_code, r.headers.get("x-model-version", ""), sent, time.monotonic()))
                except httpx.HTTPError as exc:
                    results.append((0, repr(exc), sent, time.monotonic()))

    with running(_config(reload_seconds=0.1), settings, registry) as server:
        threads = [threading.Thread(target=load, args=(server.url,)) for _ in range(4)]
        for t in threads:
            t.start()
        # counts, not sleeps: a loaded CI machine may answer only a few dozen requests a second
        _wait_until(lambda: len(results) >= 30)
        registry.set_alias(MODEL, "champion", 2)
        _wait_until(lambda: any(r[1] == "2" for r in results[-20:]))
        swapped_at = len(results)
        _wait_until(lambda: len(results) >= swapped_at + 30)
        stop.set()
        for t in threads:
            t.join()
        metrics = server.get("/metrics").text
        reloads = server.get("/models").json()["reloads"]
    statuses = {r[0] for r in results}
    assert statuses == {200}, [r for r in results if r[0] != 200][:5]
    results.sort(key=lambda r: r[2])
    assert results[0][1] == "1" and results[-1][1] == "2" and len(results) >= 60
    first_new = min(r[3] for r in results if r[1] == "2")
    late_old = [r for r in results if r[2] > first_new and r[1] == "1"]
    assert not late_old, late_old[:3]  # a request sent once the new version answered never meets the old one
    assert 'mloop_model_version{model="trips",role="primary",version="2"} 1' in metrics
    assert reloads == ["trips primary: v1 -> v2"]


def _wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the load threads"
        time.sleep(0.02)


def test_environment_uri_follows_deployments(settings, registry) -> None:
    registry.environments.create("production")
    registry.environments.deploy(MODEL, 1, "production")
    with running(_config(uri=f"deployments:/production/{MODEL}"), settings, registry) as server:
        assert server.post("/predict", [ROW]).headers["x-model-version"] == "1"
        registry.environments.deploy(MODEL, 2, "production")
        assert server.state.reload_now() == ["trips primary: v1 -> v2"]
        assert server.post("/predict", [ROW]).headers["x-model-version"] == "2"
