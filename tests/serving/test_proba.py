"""Class probabilities: load_model's predict_proba and output params, and every serving protocol, on real data."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from mloop.errors import InvalidInputError
from mloop.registry import RegistryClient, load_model, save_model
from mloop.registry.signature import infer_signature
from mloop.serving import EndpointConfig, ServeConfig, read_predictions
from tests.serving.conftest import running

CLASSES = ["early", "late", "on_time"]


def delivery_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Deliveries: an hour, a distance with 15% missing, a weather word and a zone code (string categories)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"hour": rng.integers(0, 24, n), "km": rng.uniform(0.5, 20, n).round(2),
                          "weather": rng.choice(["dry", "rain", "snow"], n, p=[0.6, 0.3, 0.1]),
                          "zone": rng.choice([f"Z{i:02d}" for i in range(12)], n)})
    frame.loc[rng.random(n) < 0.15, "km"] = np.nan
    return frame


def delivery_labels(frame: pd.DataFrame, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    km = frame["km"].fillna(8.0) + rng.normal(0, 3, len(frame))
    return np.where(km > 11, "late", np.where((frame["weather"] == "dry") & (km < 6), "early", "on_time"))


def delivery_classifier(frame: pd.DataFrame, c: float = 1.0) -> Pipeline:
    prep = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["weather", "zone"]),
                              ("km", SimpleImputer(strategy="median"), ["km"])], remainder="passthrough")
    return Pipeline([("prep", prep), ("clf", LogisticRegression(C=c, max_iter=1000))]).fit(
        frame, delivery_labels(frame))


def save_classifier(folder: Path, frame: pd.DataFrame, c: float = 1.0, **options: object) -> tuple[Path, Pipeline]:
    model = delivery_classifier(frame, c)
    # the signature comes from all the training rows, so km (with its nulls) is nullable
    save_model(model, folder, input_example=frame.head(10), signature=infer_signature(frame), **options)
    return folder, model


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as a JSON client sends them: missing values are null."""
    return orjson.loads(frame.to_json(orient="records"))


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return delivery_frame()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, train) -> tuple[Path, Pipeline]:
    return save_classifier(tmp_path_factory.mktemp("clf") / "model", train)


# ---------------------------------------------------------------------- load_model
def test_load_model_predict_proba_matches_the_trained_pipeline_row_for_row(classifier, train) -> None:
    folder, model = classifier
    loaded = load_model(folder)
    proba = loaded.predict_proba(train)
    assert proba.columns.tolist() == CLASSES
    assert all(type(c) is str for c in proba.columns)
    np.testing.assert_allclose(proba.to_numpy(), model.predict_proba(train), rtol=0, atol=1e-12)
    assert loaded.predict(train).tolist() == model.predict(train).tolist()  # the default stays labels
    via_params = loaded.predict(train, params={"output": "proba"})
    np.testing.assert_allclose(via_params.to_numpy(), proba.to_numpy())
    both = loaded.predict(train.head(5), params={"output": "both"})
    assert both.columns.tolist() == ["prediction", *CLASSES]
    assert both["prediction"].tolist() == model.predict(train.head(5)).tolist()
    with pytest.raises(InvalidInputError, match="one of") as caught:
        loaded.predict(train, params={"output": "probabilities"})
    assert caught.value.field == "params.output"


def test_the_default_output_is_declared_at_log_time(tmp_path, train) -> None:
    folder, model = save_classifier(tmp_path / "m", train, predict_output="proba")
    loaded = load_model(folder)
    assert loaded.default_output == "proba"
    np.testing.assert_allclose(loaded.predict(train).to_numpy(), model.predict_proba(train))
    assert loaded.predict(train, params={"output": "label"}).tolist() == model.predict(train).tolist()


def test_a_regressor_has_no_probabilities_and_says_so(tmp_path, train) -> None:
    frame = train.fillna({"km": 0.0})
    regressor = Pipeline([("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"),
                                                       ["weather", "zone"])], remainder="passthrough")),
                          ("lr", LinearRegression())]).fit(frame, frame["km"] * 2)
    with pytest.raises(InvalidInputError, match="predict_proba") as caught:
        save_model(regressor, tmp_path / "bad", input_example=frame.head(5), predict_output="proba")
    assert caught.value.field == "predict_output"
    save_model(regressor, tmp_path / "m", input_example=frame.head(5))
    loaded = load_model(tmp_path / "m")
    with pytest.raises(InvalidInputError, match="LinearRegression|predict_proba"):
        loaded.predict_proba(frame)
    with pytest.raises(InvalidInputError, match="output 'proba'"):
        loaded.predict(frame, params={"output": "proba"})


def test_lightgbm_and_xgboost_classifiers_answer_their_probabilities(tmp_path) -> None:
    import lightgbm as lgb
    import xgboost as xgb

    frame = delivery_frame(500, seed=3)[["hour", "km"]].astype({"hour": "float64"})
    labels = pd.Series(delivery_labels(delivery_frame(500, seed=3))).map({c: i for i, c in enumerate(CLASSES)})
    for name, model in [("lgb", lgb.LGBMClassifier(n_estimators=20, verbose=-1)),
                        ("lgb-binary", lgb.LGBMClassifier(n_estimators=20, verbose=-1)),
                        ("xgb", xgb.XGBClassifier(n_estimators=20, max_depth=3))]:
        y = (labels == 1).astype(int) if name == "lgb-binary" else labels
        model.fit(frame, y)
        save_model(model, tmp_path / name, input_example=frame.head(10), signature=infer_signature(frame))
        loaded = load_model(tmp_path / name)
        proba = loaded.predict_proba(frame)
        np.testing.assert_allclose(proba.to_numpy(), model.predict_proba(frame), rtol=1e-6, atol=1e-9)
        assert proba.columns.tolist() == sorted(set(y.tolist()))
        assert all(type(c) is int for c in proba.columns), name  # JSON-clean labels, not numpy ints
        assert orjson.dumps(proba.columns.tolist())


# ---------------------------------------------------------------------- serving
def test_every_protocol_answers_probabilities_with_class_labels(classifier, train, settings) -> None:
    folder, model = classifier
    expected = model.predict_proba(train)
    rows = records(train)
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri=str(folder)),))
    with running(config, settings) as server:
        plain = server.post("/predict", rows)
        assert plain.status_code == 200, plain.text
        assert plain.json()["predictions"] == model.predict(train).tolist() and "classes" not in plain.json()

        query = server.post("/predict?output=proba", rows).json()
        assert query["classes"] == CLASSES
        np.testing.assert_allclose(query["predictions"], expected, atol=1e-12)

        body = server.post("/predict", {"records": rows, "params": {"output": "both"}}).json()
        assert body["predictions"] == model.predict(train).tolist()
        np.testing.assert_allclose(body["probabilities"], expected, atol=1e-12)

        columns = list(train.columns)
        split = {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
        mlflow = server.post("/invocations", {"dataframe_split": split, "params": {"output": "proba"}}).json()
        np.testing.assert_allclose(mlflow["predictions"], expected, atol=1e-12)
        assert mlflow["classes"] == CLASSES

        tensors = [{"name": c, "shape": [len(rows)], "datatype": "BYTES" if c in ("weather", "zone") else "FP64",
                    "data": [r[c] for r in rows]} for c in columns]
        by_name = server.post("/v2/models/eta/infer", {"id": "req-42", "inputs": tensors,
                                                       "outputs": [{"name": "probabilities"}]}).json()
        assert by_name["id"] == "req-42"
        [proba] = by_name["outputs"]
        assert proba["name"] == "probabilities" and proba["shape"] == [len(rows), 3]
        assert proba["parameters"]["classes"] == CLASSES
        np.testing.assert_allclose(np.reshape(proba["data"], (len(rows), 3)), expected, atol=1e-12)
        both = server.post("/v2/models/eta/infer", {"inputs": tensors, "parameters": {"output": "both"}}).json()
        assert [o["name"] for o in both["outputs"]] == ["predictions", "probabilities"]
        assert both["outputs"][0]["data"] == model.predict(train).tolist()

        meta = server.get("/v2/models/eta").json()
        assert [o["name"] for o in meta["outputs"]] == ["predictions", "probabilities"]
        assert meta["outputs"][1]["shape"] == [-1, 3] and meta["outputs"][1]["parameters"]["classes"] == CLASSES

        wrong = server.post("/predict?output=probs", rows[:1])
        assert wrong.status_code == 400 and wrong.json()["field"] == "output"
        unknown = server.post("/v2/models/eta/infer", {"inputs": tensors, "outputs": [{"name": "logits"}]})
        assert unknown.status_code == 400 and "logits" in unknown.json()["message"]


def test_probabilities_from_a_regressor_are_a_clear_400(model_dir, settings) -> None:
    config = ServeConfig(endpoints=(EndpointConfig(name="trips", uri=str(model_dir)),))
    row = {"hour": 8, "km": 3.5, "weather": "rain"}
    with running(config, settings) as server:
        for path, body in [("/predict?output=proba", row), ("/predict", {"records": [row], "params": {
                "output": "proba"}}), ("/invocations", {"dataframe_records": [row], "params": {"output": "both"}})]:
            answer = server.post(path, body)
            assert answer.status_code == 400, answer.text
            assert answer.json()["field"] == "output"
            assert "predict_proba" in answer.json()["message"] and "'label'" in answer.json()["message"]
        tensors = [{"name": k, "shape": [1], "datatype": "BYTES", "data": [v]} for k, v in row.items()]
        v2 = server.post("/v2/models/trips/infer", {"id": "r1", "inputs": tensors})
        assert v2.json()["id"] == "r1" and [o["name"] for o in v2.json()["outputs"]] == ["predictions"]
        assert [o["name"] for o in server.get("/v2/models/trips").json()["outputs"]] == ["predictions"]


def test_a_model_declared_proba_answers_probabilities_by_default_and_logs_them(tmp_path, train, settings) -> None:
    folder, model = save_classifier(tmp_path / "m", train, predict_output="proba")
    sample = train.iloc[:40]
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri=str(folder)),), log_flush_seconds=0.1)
    with running(config, settings) as server:
        answer = server.post("/predict", records(sample)).json()
        np.testing.assert_allclose(answer["predictions"], model.predict_proba(sample), atol=1e-12)
        labels = server.post("/predict?output=label", records(sample)).json()
        assert labels["predictions"] == model.predict(sample).tolist()
    logged = read_predictions(settings, "eta")
    probas = logged[logged["proba"].notna()]
    assert len(probas) == 40 and logged["proba"].isna().sum() == 40
    first = orjson.loads(probas.iloc[0]["proba"])
    assert list(first) == CLASSES
    by_id = dict(zip(probas["id"], probas["proba"], strict=True))
    for i, p in enumerate(model.predict_proba(sample)):
        np.testing.assert_allclose(list(orjson.loads(by_id[f"{answer['ids'][i]}"]).values()), p, atol=1e-12)
    # the label column of a probabilities answer is the most probable class
    assert probas.sort_values("id")["output"].map(orjson.loads).tolist() == \
        [CLASSES[int(np.argmax(p))] for p in model.predict_proba(sample.iloc[np.argsort(answer["ids"])])]


def test_ab_arms_and_the_shadow_answer_probabilities_of_their_own_version(tmp_path, train, settings) -> None:
    client = RegistryClient(settings)
    models = {}
    for version, c in ((1, 1.0), (2, 0.01)):
        folder, models[str(version)] = save_classifier(tmp_path / f"v{version}", train, c=c)
        client.register("eta", folder)
    config = ServeConfig(endpoints=(EndpointConfig(name="eta", uri="models:/eta/1", ab=(("models:/eta/2", 0.5),),
                                                   shadow="models:/eta/2", max_batch_size=8),))
    sample = train.iloc[:5]
    seen = set()
    with running(config, settings, client) as server:
        for key in range(30):
            answer = httpx.post(f"{server.url}/predict?output=proba", json=records(sample),
                                headers={"x-mloop-key": f"user-{key}"}, timeout=30)
            version = answer.headers["x-model-version"]
            seen.add(version)
            np.testing.assert_allclose(answer.json()["predictions"], models[version].predict_proba(sample),
                                       atol=1e-12)
        shadow = server.get("/models/eta/shadow").json()
    assert seen == {"1", "2"}
    assert shadow["rows"] > 0 and shadow["failed"] == 0


def test_served_lightgbm_and_xgboost_classifiers_answer_probabilities_with_plain_labels(tmp_path, settings) -> None:
    import lightgbm as lgb
    import xgboost as xgb

    source = delivery_frame(500, seed=5)
    frame = source[["hour", "km"]].astype({"hour": "float64"})
    labels = pd.Series(delivery_labels(source)).map({c: i for i, c in enumerate(CLASSES)})
    models = {"lgb": lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(frame, labels),
              "xgb": xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(frame, labels)}
    for name, model in models.items():
        save_model(model, tmp_path / name, input_example=frame.head(10), signature=infer_signature(frame))
    config = ServeConfig(endpoints=tuple(EndpointConfig(name=name, uri=str(tmp_path / name)) for name in models))
    with running(config, settings) as server:
        for name, model in models.items():
            answer = server.post(f"/predict/{name}?output=both", records(frame))
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["classes"] == [0, 1, 2]
            assert body["predictions"] == model.predict(frame).tolist()
            np.testing.assert_allclose(body["probabilities"], model.predict_proba(frame), rtol=1e-6, atol=1e-9)
            meta = server.get(f"/v2/models/{name}").json()
            assert meta["outputs"][1]["parameters"]["classes"] == [0, 1, 2]


def test_the_log_reads_files_written_before_probabilities_beside_new_ones(settings) -> None:
    import pyarrow as pa

    from mloop.serving import PredictionLog

    log = PredictionLog(settings)
    old = pa.table({"id": ["a-0"], "time": pa.array([0], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                    "model": ["eta"], "version": ["1"], "role": ["primary"], "inputs": pa.array([{"km": 1.0}]),
                    "output": ['"late"'], "latency_ms": [1.0]})
    log._put("predictions/eta/2026-01-01/old.parquet", old)
    log.record("eta", "2", "primary", "b", {"km": [2.0]}, ["early"], 0.001, 1, proba=[[0.75, 0.25]],
               classes=["early", "late"])
    log.close()
    frame = read_predictions(settings, "eta")
    assert frame["id"].tolist() == ["a-0", "b-0"]
    assert frame["proba"].isna().tolist() == [True, False]
    assert orjson.loads(frame["proba"].iloc[1]) == {"early": 0.75, "late": 0.25}
