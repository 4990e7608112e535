"""A running server follows the registry's rollout tags at its reload poll: a canary arm answers its share, a
shadow gets a copy of the traffic, both go away with their tags; an endpoint routed by hand, or told not to,
ignores them, and a malformed tag changes nothing."""

from __future__ import annotations

from mloop.registry import RegistryClient
from mloop.serving import EndpointConfig, ServeConfig
from mloop.serving.rollout import CANARY_TAG, SHADOW_TAG, rollout_tags
from tests.serving.conftest import MODEL, ROW, running


def _tag(registry: RegistryClient, tags: dict[str, str], drop: list[str] = ()) -> None:  # type: ignore[assignment]
    with registry.transaction() as tx:
        if drop:
            tx.delete_model_tags(MODEL, list(drop))
        if tags:
            tx.set_model_tags(MODEL, tags)


def test_the_server_follows_canary_and_shadow_tags(settings, registry) -> None:  # type: ignore[no-untyped-def]
    config = ServeConfig(endpoints=(EndpointConfig(name="web", uri=f"models:/{MODEL}@champion"),), reload_seconds=0)
    with running(config, settings, registry) as server:
        _tag(registry, rollout_tags(canary=2, percent=50))
        assert server.state.reload_now() == ["web canary: v2 at 50%"]
        versions = {server.post("/predict/web", [ROW], headers={"x-mloop-key": f"k{i}"}).headers["x-model-version"]
                    for i in range(40)}
        assert versions == {"1", "2"}
        _tag(registry, rollout_tags(shadow=2), drop=[CANARY_TAG])
        assert sorted(server.state.reload_now()) == ["web canary: off", "web shadow: v2"]
        for _ in range(5):
            assert server.post("/predict/web", [ROW]).headers["x-model-version"] == "1"
        described = server.get("/models").json()["models"][0]
        assert described["shadow"]["version"] == "2" and len(described["arms"]) == 1
        _tag(registry, {}, drop=[SHADOW_TAG])
        assert server.state.reload_now() == ["web shadow: off"]
        assert server.get("/models").json()["models"][0]["shadow"] is None
        _tag(registry, {CANARY_TAG: "2:often"})  # malformed: no change, no failure
        assert server.state.reload_now() == []
        assert server.post("/predict/web", [ROW]).status_code == 200


def test_an_endpoint_routed_by_hand_or_told_not_to_ignores_the_tags(settings, registry) -> None:  # type: ignore
    _tag(registry, rollout_tags(canary=2, percent=50))
    for endpoint in (EndpointConfig(name="m", uri=f"models:/{MODEL}@champion", shadow=f"models:/{MODEL}/1"),
                     EndpointConfig(name="m", uri=f"models:/{MODEL}@champion", rollouts=False)):
        with running(ServeConfig(endpoints=(endpoint,), reload_seconds=0), settings, registry) as server:
            assert server.state.reload_now() == []
            assert {server.post("/predict", [ROW], headers={"x-mloop-key": f"k{i}"}).headers["x-model-version"]
                    for i in range(20)} == {"1"}


def test_an_ended_canary_leaves_no_batching_threads(settings, registry, monkeypatch) -> None:  # type: ignore
    import threading
    import time

    from mloop.serving import routing

    monkeypatch.setattr(routing, "RETIRE_GRACE", 0.2)

    def batch_threads() -> int:
        return sum(t.name.startswith("mloop-batch") for t in threading.enumerate())

    config = ServeConfig(endpoints=(EndpointConfig(name="web", uri=f"models:/{MODEL}@champion", max_batch_size=8),),
                         reload_seconds=0)
    with running(config, settings, registry) as server:
        assert server.post("/predict/web", [ROW]).status_code == 200
        before = batch_threads()
        _tag(registry, rollout_tags(canary=2, percent=50))
        server.state.reload_now()
        answered = {server.post("/predict/web", [ROW], headers={"x-mloop-key": f"k{i}"}).headers["x-model-version"]
                    for i in range(30)}
        assert answered == {"1", "2"} and batch_threads() > before  # the canary batches on threads of its own
        _tag(registry, {}, drop=[CANARY_TAG])
        assert server.state.reload_now() == ["web canary: off"]
        deadline = time.monotonic() + 10
        while batch_threads() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert batch_threads() == before
        assert server.post("/predict/web", [ROW]).headers["x-model-version"] == "1"
