"""A model server fetching features refuses an entity key of the wrong type by name (it used to look up "abc")."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.linear_model import LinearRegression

from mloop.config import Settings
from mloop.features import FeatureStore
from mloop.registry import RegistryClient, save_model
from mloop.serving import EndpointConfig, ServeConfig
from tests.serving.conftest import running
from tests.serving.test_integration import feature_repo  # noqa: F401  (the fixture)


def test_entity_keys_of_the_wrong_type_are_named(feature_repo: FeatureStore, settings: Settings,  # noqa: F811
                                                 tmp_path: Path) -> None:
    X = pd.DataFrame({"avg_fare": [10.0, 14.0, 30.0], "minutes": [6.0, 10.0, 36.0]})
    save_model(LinearRegression().fit(X, X["minutes"]), tmp_path / "eta", input_example=X.head(2),
               metadata={"feature_service": "eta_model"})
    client = RegistryClient(settings)
    client.register("eta", tmp_path / "eta")
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri="models:/eta/1", log=False),), reload_seconds=0)
    with running(config, settings, client) as server:
        for key in ("abc", 10**30, 2.5):
            wrong = server.post("/predict/eta", {"records": [{"zone_id": 2, "distance_km": 1.0},
                                                             {"zone_id": key, "distance_km": 1.0}]})
            assert wrong.status_code == 422, wrong.text
            errors = wrong.json()["errors"]
            assert [(e["field"], e["row"]) for e in errors] == [("zone_id", 1)]
            assert "Int64" in errors[0]["expected"]
        assert server.post("/predict/eta", {"records": [{"zone_id": 2, "distance_km": 1.0}]}).status_code == 200
