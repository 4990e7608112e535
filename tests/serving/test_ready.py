"""Ready means able to answer: a version is ready once it answered its input example, sent as JSON, through
the request path; one that cannot stays not ready with the reason, and a reload never swaps it in."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mloop.registry import RegistryClient, save_model
from mloop.registry.signature import infer_signature
from mloop.serving import EndpointConfig, ServeConfig, create_serving_app
from tests.serving.conftest import running
from tests.serving.test_proba import delivery_frame, records, save_classifier


class NullIntolerant:
    """A model written for complete rows: it fails on a missing distance, which its signature allows."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        km = frame["km"].to_numpy(dtype=float)
        if np.isnan(km).any():
            raise RuntimeError("km has NaN: the feature pipeline was expected to fill it")
        return km * 2


def save_null_intolerant(folder, frame: pd.DataFrame):  # noqa: ANN001, ANN201
    save_model(NullIntolerant(), folder, input_example=frame.head(10), signature=infer_signature(frame))
    return folder


def test_a_model_that_fails_on_its_example_is_live_but_never_ready(tmp_path, settings) -> None:
    frame = delivery_frame(200)
    assert frame.head(10)["km"].isna().any()  # the example carries the nulls the model cannot take
    folder = save_null_intolerant(tmp_path / "m", frame)
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri=str(folder)),), trusted=True)
    with running(config, settings, until="/health/live") as server:
        assert server.get("/health/live").status_code == 200
        for path in ("/health/ready", "/health", "/ping"):
            ready = server.get(path)
            assert ready.status_code == 503
            assert ready.json()["status"] == "not ready"
            [reason] = ready.json()["reasons"].values()
            assert "km has NaN" in reason and "RuntimeError" in reason
        v2 = server.get("/v2/health/ready")
        assert v2.status_code == 503 and v2.json()["ready"] is False
        model_ready = server.get("/v2/models/eta/ready")
        assert model_ready.status_code == 503 and "km has NaN" in str(model_ready.json()["reasons"])
        complete = frame.dropna().head(3)
        answer = server.post("/predict", records(complete))  # not ready does not mean refusing traffic
        assert answer.status_code == 200 and answer.json()["predictions"] == (complete["km"] * 2).tolist()


def test_ready_only_after_the_example_was_answered(tmp_path, settings) -> None:
    frame = delivery_frame(200)
    folder, _ = save_classifier(tmp_path / "m", frame)
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri=str(folder)),))
    app = create_serving_app(config, settings)
    state = app.state.serving
    arm = state.default.primary
    assert arm.model.not_ready is None and arm.model.classes == ["early", "late", "on_time"]
    assert state.readiness() == ({"status": "starting"}, 503)  # loaded and checked, but not started
    with running(config, settings) as server:
        assert server.get("/health/ready").json() == {"status": "ready"}


def test_a_reload_to_a_version_that_cannot_answer_keeps_the_old_one_serving(tmp_path, settings) -> None:
    frame = delivery_frame(200)
    client = RegistryClient(settings)
    good, model = save_classifier(tmp_path / "v1", frame)
    client.register("eta", good)
    client.register("eta", save_null_intolerant(tmp_path / "v2", frame))
    client.set_alias("eta", "champion", 1)
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri="models:/eta@champion"),), reload_seconds=0,
                         trusted=True)
    sample = frame.head(20)
    with running(config, settings, client) as server:
        client.set_alias("eta", "champion", 2)
        [message] = server.state.reload_now()
        assert "v2 not swapped in" in message and "km has NaN" in message and "v1 keeps serving" in message
        assert server.get("/health/ready").status_code == 200
        answer = server.post("/predict", records(sample))
        assert answer.headers["x-model-version"] == "1"
        assert answer.json()["predictions"] == model.predict(sample).tolist()
        assert server.state.reload_now() == []  # the broken version is not loaded again at every poll
        assert 'event="reload_failed"' in server.get("/metrics").text

        fixed, fixed_model = save_classifier(tmp_path / "v3", frame, c=0.05)
        client.register("eta", fixed)
        client.set_alias("eta", "champion", 3)
        [message] = server.state.reload_now()
        assert "v1 -> v3" in message
        answer = server.post("/predict?output=proba", records(sample))
        assert answer.headers["x-model-version"] == "3"
        np.testing.assert_allclose(answer.json()["predictions"], fixed_model.predict_proba(sample), atol=1e-12)
