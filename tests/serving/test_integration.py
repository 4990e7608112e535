"""Serving with the training schema (validation) and the feature service (feature store), on a real server."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from mloop.config import Settings
from mloop.features import FeatureStore
from mloop.registry import RegistryClient, load_model, save_model
from mloop.serving import EndpointConfig, ServeConfig, ServedModel
from mloop.serving import model as served_model
from mloop.validation import attach_to_model_version, infer_schema
from tests.serving.conftest import MODEL, ROW, running, trip_frame

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _training_schema() -> object:
    schema = infer_schema(trip_frame())
    schema["hour"].min, schema["hour"].max = 0, 23
    schema["km"].min, schema["km"].max = 0.0, 100.0
    schema["km"].severity = {"range": "warn"}  # a far trip is odd, not wrong: it must never reject a request
    return schema


def test_attached_training_schema_rejects_out_of_range_values(registry: RegistryClient, settings: Settings) -> None:
    attach_to_model_version(MODEL, 1, schema=_training_schema(), registry=registry)
    config = ServeConfig(endpoints=(EndpointConfig(name=MODEL, uri=f"models:/{MODEL}/1", log=False),),
                         reload_seconds=0)
    with running(config, settings, registry) as server:
        good = server.post(f"/predict/{MODEL}", {"records": [ROW]})
        assert good.status_code == 200, good.text
        bad = server.post(f"/predict/{MODEL}", {"records": [ROW, {**ROW, "hour": 77}]})
        assert bad.status_code == 422, bad.text
        errors = bad.json()["errors"]
        assert [(e["field"], e["value"], e["row"], e["expected"]) for e in errors] == \
            [("hour", 77, 1, "values in the range [0, 23]")]
        assert "hour" in errors[0]["message"] and "77" in errors[0]["message"]
        far = server.post(f"/predict/{MODEL}", {"records": [{**ROW, "km": 500.0}]})
        assert far.status_code == 200, far.text  # a "warn" violation is counted, not rejected
        assert server.state.endpoints[MODEL].primary.model.schema_warnings == {"km": 1}
        assert f'mloop_events_total{{model="{MODEL}",event="schema_warning"}} 1' in server.get("/metrics").text
        both = server.post("/invocations", {"dataframe_records": [{**ROW, "hour": -1, "weather": "hail"}]})
        assert both.status_code == 422
        assert {e["field"] for e in both.json()["errors"]} == {"hour", "weather"}
        # version 2 has no schema: only the signature guards it
        assert ServedModel.load(f"models:/{MODEL}/2", client=registry).checks == []


def test_schema_shipped_in_the_model_folder_is_enforced(tmp_path: Path) -> None:
    X = trip_frame()
    folder = tmp_path / "m"
    save_model(LinearRegression().fit(X[["hour", "km"]], X["km"]), folder, input_example=X[["hour", "km"]].head(3),
               extra_files={"schema.json": _training_schema().to_dict()})  # type: ignore[attr-defined]
    served = ServedModel(load_model(folder), checks=served_model._hooks(load_model(folder))[0])
    _, errors = served.prepare({"hour": [77], "km": [3.0]}, 1)
    assert [(e.field, e.value) for e in errors] == [("hour", 77)]
    assert served.prepare({"hour": [7], "km": [3.0]}, 1)[1] == []


REPO = '''
import pandas as pd
from datetime import timedelta
from mloop.features import (Entity, FeatureService, FeatureView, Field, FileSource, Float64, Int64,
                            OnDemandFeatureView)

zone = Entity("zone", join_keys=["zone_id"], key_types=[Int64])
zone_stats = FeatureView("zone_stats", entities=["zone"], schema=[Field("avg_fare", Float64),
                         Field("avg_speed", Float64)], source=FileSource({src!r}), ttl=timedelta(days=3650))


def _eta(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({{"minutes": df["distance_km"] / df["avg_speed"] * 60}})


eta_features = OnDemandFeatureView("eta_features", inputs=["zone_stats:avg_speed"], schema=[Field("minutes", Float64)],
                                   function=_eta, request=[Field("distance_km", Float64)])
eta_model = FeatureService("eta_model", features=["zone_stats:avg_fare", "eta_features"])
'''


@pytest.fixture
def feature_repo(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> FeatureStore:
    """A feature repository (file source, on-demand transform, service) applied and materialized to SQLite."""
    src = tmp_path / "zone_src"
    src.mkdir()
    pd.DataFrame({"zone_id": [1, 2, 3], "event_timestamp": [T0] * 3, "avg_fare": [10.0, 14.0, 30.0],
                  "avg_speed": [20.0, 30.0, 15.0]}).to_parquet(src / "part-0.parquet", index=False)
    repo = tmp_path / "features.py"
    repo.write_text(textwrap.dedent(REPO.format(src=str(src))))
    monkeypatch.setenv("MLOOP_FEATURE_REPO", str(repo))
    store = FeatureStore(repo, home=str(home))
    store.apply()
    store.materialize(None, (T0 + pd.Timedelta(hours=1)).to_pydatetime())
    return store


def test_request_with_entity_keys_only_gets_the_feature_service(feature_repo: FeatureStore, settings: Settings,
                                                                tmp_path: Path) -> None:
    entity_df = pd.DataFrame({"zone_id": [1, 2, 3, 1, 2, 3], "distance_km": [2.0, 5.0, 9.0, 4.0, 1.0, 3.0],
                              "event_timestamp": [T0 + pd.Timedelta(minutes=30)] * 6})
    train = feature_repo.training_set(entity_df, service="eta_model", log_to_run=False)
    X = train[["avg_fare", "minutes"]]
    model = LinearRegression().fit(X, 3.0 * train["minutes"] + 0.5 * train["avg_fare"])
    client = RegistryClient(settings)
    save_model(model, tmp_path / "eta", input_example=X.head(2), metadata={"feature_service": "eta_model"})
    client.register("eta", tmp_path / "eta")
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri="models:/eta/1", log=False),), reload_seconds=0)
    with running(config, settings, client) as server:
        got = server.post("/predict/eta", {"records": [{"zone_id": 2, "distance_km": 6.0},
                                                       {"zone_id": 3, "distance_km": 1.5}]})
        assert got.status_code == 200, got.text
        online = feature_repo.online(service="eta_model", entities={"zone_id": [2, 3]},
                                     request={"distance_km": [6.0, 1.5]}).to_frame()
        assert got.json()["predictions"] == pytest.approx(model.predict(online[["avg_fare", "minutes"]]).tolist())
        assert got.json()["predictions"] == pytest.approx(  # the same numbers the training set gives
            model.predict(pd.DataFrame({"avg_fare": [14.0, 30.0], "minutes": [12.0, 6.0]})).tolist())
        full = server.post("/predict/eta", {"records": [{"avg_fare": 14.0, "minutes": 12.0}]})  # features given
        assert full.status_code == 200 and full.json()["predictions"] == pytest.approx(got.json()["predictions"][:1])

        unknown = server.post("/predict/eta", {"records": [{"zone_id": 2, "distance_km": 1.0},
                                                           {"zone_id": 99, "distance_km": 1.0}]})
        assert unknown.status_code == 422, unknown.text
        assert [(e["field"], e["value"], e["row"]) for e in unknown.json()["errors"]] == [("zone_id", 99, 1)]
        assert "not in the online store" in unknown.json()["errors"][0]["message"]
        no_key = server.post("/predict/eta", {"records": [{"distance_km": 1.0}]})
        assert no_key.status_code == 422 and no_key.json()["errors"][0]["field"] == "zone_id"
        no_request = server.post("/predict/eta", {"records": [{"zone_id": 2}]})
        assert no_request.status_code == 422 and no_request.json()["errors"][0]["field"] == "distance_km"
