"""Models trained on category columns and data with nulls answer real requests the way they answer in memory.

Each flavor is trained on trips with pandas ``category`` columns (one ordered), a free-text string column and
10%+ nulls, saved with an input example that holds no null (plus the training data), loaded untrusted, then
fed what a server or a batch job gets: JSON-decoded records (strings for categories, None for nulls) and
Parquet files whose category columns arrive as strings or as dictionaries in another order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mloop
from mloop.errors import InvalidInputError
from mloop.registry import load_model, save_model
from mloop.registry.signature import Signature, infer_signature

ZONES = [f"zone-{i:02d}" for i in range(30)]
SIZES = ["S", "M", "L"]


def trips(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Trips with a category column (12% null), an ordered category, a string column (10% null) and a float
    column (12% null); the target depends on all of them."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "km": rng.uniform(0.5, 30, n).round(2),
        "hour": rng.integers(0, 24, n),
        "zone": pd.Categorical(rng.choice(ZONES, n), categories=ZONES),
        "size": pd.Categorical(rng.choice(SIZES, n), categories=SIZES, ordered=True),
        "vendor": rng.choice(["acme", "globex", "initech", "umbrella"], n),
    })
    frame.loc[rng.random(n) < 0.12, "km"] = np.nan
    frame.loc[rng.random(n) < 0.12, "zone"] = np.nan
    frame.loc[rng.random(n) < 0.10, "vendor"] = np.nan
    target = (np.nan_to_num(frame["km"].to_numpy(), nan=12.0) * 2 + frame["zone"].cat.codes.to_numpy() % 7
              + frame["size"].cat.codes.to_numpy() * 3 + frame["hour"].to_numpy() * 0.1)
    return frame, target


def _models() -> dict[str, tuple[Any, list[str]]]:
    """name -> (unfitted model, the columns it takes)."""
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    trees = ["km", "hour", "zone", "size"]
    pipeline = Pipeline([
        ("prep", ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["km", "hour"]),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="unknown"),
                                  OneHotEncoder(handle_unknown="ignore")), ["zone", "size", "vendor"])])),
        ("model", Ridge())])
    return {
        "lightgbm": (lgb.LGBMRegressor(n_estimators=15, num_leaves=15, verbose=-1), trees),
        "xgboost": (xgb.XGBRegressor(n_estimators=15, max_depth=4, enable_categorical=True, tree_method="hist"),
                    trees),
        "sklearn hist gradient boosting": (HistGradientBoostingRegressor(max_iter=15,
                                                                         categorical_features="from_dtype"), trees),
        "sklearn pipeline": (pipeline, ["km", "hour", "zone", "size", "vendor"]),
    }


@pytest.fixture(scope="module")
def fitted() -> dict[str, tuple[Any, list[str]]]:
    frame, target = trips(4_000)
    out = {}
    for name, (model, columns) in _models().items():
        out[name] = (model.fit(frame[columns], target), columns)
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """What a server reads from a JSON body: strings for categories, None for nulls."""
    return json.loads(frame.to_json(orient="records"))


def _save(model: Any, folder: Path, train: pd.DataFrame, **kwargs: Any) -> Path:
    example = train.dropna().head(5)
    assert not example.isna().any().any()
    save_model(model, folder, input_example=example, training_data=train, **kwargs)
    return folder


@pytest.mark.parametrize("flavor", sorted(_models()))
def test_records_and_parquet_predict_what_the_model_in_memory_does(flavor: str, fitted: Any, tmp_path: Path) -> None:
    model, columns = fitted[flavor]
    train = trips(4_000)[0][columns]
    folder = _save(model, tmp_path / "m", train)
    loaded = load_model(folder, cache=False)  # untrusted: no trusted= argument

    fresh = trips(1_500, seed=1)[0][columns]
    expected = model.predict(fresh)
    np.testing.assert_allclose(loaded.predict(_records(fresh)), expected, rtol=1e-6)

    # Parquet: the category columns as plain strings, and as dictionaries whose order is not the training one
    table = pa.Table.from_pandas(fresh, preserve_index=False)
    for name in ("zone", "size"):
        plain = table.column(name).cast(pa.string())
        table = table.set_column(table.schema.get_field_index(name), name, plain)
    pq.write_table(table, tmp_path / "strings.parquet")
    reordered = fresh.assign(zone=fresh["zone"].cat.reorder_categories(ZONES[::-1]),
                             size=fresh["size"].cat.set_categories(["L", "S", "M", "XL"], ordered=False))
    reordered.to_parquet(tmp_path / "dictionary.parquet")
    for path in ("strings.parquet", "dictionary.parquet"):
        read = pd.read_parquet(tmp_path / path)
        np.testing.assert_allclose(loaded.predict(read), expected, rtol=1e-6, err_msg=path)
        enforced = loaded.signature.enforce(read)  # the codes the model sees are the training ones
        assert enforced["zone"].cat.categories.tolist() == ZONES and enforced["size"].dtype == train["size"].dtype
        assert enforced["zone"].astype(object).equals(fresh["zone"].astype(object))


def test_the_signature_keeps_categories_and_takes_nullability_from_the_training_data(fitted: Any,
                                                                                     tmp_path: Path) -> None:
    model, columns = fitted["sklearn pipeline"]
    train = trips(4_000)[0][columns]
    sig = load_model(_save(model, tmp_path / "m", train)).signature
    assert sig is not None
    specs = {c.name: c for c in sig.inputs}
    assert (specs["zone"].type, specs["zone"].categories, specs["zone"].ordered) == ("category", tuple(ZONES), False)
    assert (specs["size"].type, specs["size"].categories, specs["size"].ordered) == ("category", tuple(SIZES), True)
    assert specs["size"].dtype == train["size"].dtype and specs["zone"].dtype == train["zone"].dtype
    # the example had no null; the training data did in km, zone and vendor, never in hour or size
    assert {n: s.nullable for n, s in specs.items()} == {"km": True, "hour": False, "zone": True, "size": False,
                                                         "vendor": True}
    assert sig.unknown_categories == "reject"
    # round trip through the manifest's dict form
    assert Signature.from_dict(sig.to_dict()) == sig


def test_an_example_alone_leaves_columns_nullable_where_the_model_takes_nulls(fitted: Any, tmp_path: Path) -> None:
    model, columns = fitted["lightgbm"]
    example = trips(4_000)[0][columns].dropna().head(5)
    save_model(model, tmp_path / "trees", input_example=example)
    trees = load_model(tmp_path / "trees").signature
    assert trees is not None and all(c.nullable for c in trees.inputs)  # LightGBM takes NaN everywhere

    from sklearn.linear_model import LinearRegression

    numbers = example[["km", "hour"]].astype(float)
    save_model(LinearRegression().fit(numbers, [1, 2, 3, 4, 5]), tmp_path / "linear", input_example=numbers)
    linear = load_model(tmp_path / "linear")
    assert linear.signature is not None and not any(c.nullable for c in linear.signature.inputs)
    with pytest.raises(InvalidInputError) as caught:  # a clear error naming the column, not the model's own
        linear.predict([{"km": None, "hour": 3.0}])
    assert caught.value.field == "km" and "not nullable" in caught.value.message


def test_without_a_model_to_ask_float_and_category_columns_are_nullable() -> None:
    example = trips(50)[0].dropna().head(5)
    sig = infer_signature(example)
    assert {c.name: c.nullable for c in sig.inputs} == {"km": True, "hour": False, "zone": True, "size": True,
                                                        "vendor": False}
    # training data that never held a null in km makes it not nullable
    train = trips(200)[0].assign(km=1.0)
    assert {c.name: c.nullable for c in infer_signature(example, training_data=train).inputs}["km"] is False


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost", "sklearn hist gradient boosting"])
def test_an_unknown_category_is_rejected_by_default_or_read_as_missing(flavor: str, fitted: Any,
                                                                       tmp_path: Path) -> None:
    model, columns = fitted[flavor]
    train = trips(4_000)[0][columns]
    rows = _records(trips(20, seed=2)[0][columns])
    rows[7]["zone"] = "zone-99"

    strict = load_model(_save(model, tmp_path / "reject", train), cache=False)
    with pytest.raises(InvalidInputError) as caught:
        strict.predict(rows)
    error = caught.value
    assert error.field == "zone" and error.value == "zone-99"
    assert "'zone-99'" in error.message and "(row 7)" in error.message and "'zone-00'" in error.message
    assert error.expected is not None and error.expected.startswith("one of ['zone-00'")

    lenient = load_model(_save(model, tmp_path / "missing", train, unknown_categories="missing"), cache=False)
    assert lenient.signature is not None and lenient.signature.unknown_categories == "missing"
    as_null = [dict(r, zone=None) if i == 7 else r for i, r in enumerate(rows)]
    np.testing.assert_allclose(lenient.predict(rows), lenient.predict(as_null), rtol=1e-9)
    frame = pd.DataFrame(as_null).astype({"zone": train["zone"].dtype, "size": train["size"].dtype})
    np.testing.assert_allclose(lenient.predict(rows), model.predict(frame), rtol=1e-6)


def _one_hot_on_size() -> Any:
    """A pipeline whose encoder saw no null in ``size`` (and raises on anything it did not see)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    prep = ColumnTransformer([("num", SimpleImputer(), ["km"]), ("cat", OneHotEncoder(), ["size"])])
    return Pipeline([("prep", prep), ("model", Ridge())])


def test_missing_for_unknown_categories_makes_a_column_nullable_only_where_the_model_takes_nulls(
        fitted: Any, tmp_path: Path) -> None:
    train, target = trips(4_000)
    assert not train["size"].isna().any()  # size never held a null in training
    model, columns = fitted["lightgbm"]  # LightGBM answers a null anywhere: size becomes nullable
    trees = load_model(_save(model, tmp_path / "trees", train[columns], unknown_categories="missing")).signature
    assert trees is not None and {c.name: c.nullable for c in trees.inputs}["size"] is True

    one_hot = _one_hot_on_size().fit(train[["km", "size"]], target)
    folder = tmp_path / "one-hot"
    with pytest.raises(InvalidInputError) as refused:  # at save time, naming the column, not at the first request
        _save(one_hot, folder, train[["km", "size"]], unknown_categories="missing")
    assert refused.value.field == "unknown_categories.size" and "'size'" in refused.value.message
    assert "'reject'" in refused.value.message and not any(folder.iterdir())
    strict = load_model(_save(one_hot, folder, train[["km", "size"]]), cache=False).signature
    assert strict is not None and strict.unknown_categories == "reject"


def test_an_unknown_category_in_a_column_that_is_not_nullable_is_refused_even_under_missing(
        tmp_path: Path) -> None:
    """A signature handed over with "missing" and no example to ask the model with: an unknown value in a
    column that may not be null is an InvalidInputError naming it (a 422 served, a skippable row in batch),
    never the model's own ValueError."""
    train, target = trips(4_000)
    one_hot = _one_hot_on_size().fit(train[["km", "size"]], target)
    given = infer_signature(train[["km", "size"]], training_data=train[["km", "size"]],
                            unknown_categories="missing")
    save_model(one_hot, tmp_path / "m", signature=given)
    loaded = load_model(tmp_path / "m", cache=False)
    assert loaded.signature is not None and loaded.signature.unknown_categories == "missing"
    assert {c.name: c.nullable for c in loaded.signature.inputs} == {"km": True, "size": False}

    fresh = trips(500, seed=4)[0][["km", "size"]]
    rows = _records(fresh)
    np.testing.assert_allclose(loaded.predict(rows), one_hot.predict(fresh), rtol=1e-6)
    rows[9]["size"] = "XXL"
    with pytest.raises(InvalidInputError) as caught:
        loaded.predict(rows)
    assert (caught.value.field, caught.value.value) == ("size", "XXL") and "(row 9)" in caught.value.message
    assert caught.value.expected == "one of ['S', 'M', 'L']"

    from mloop.serving import batch_predict

    bad = fresh.astype({"size": object})
    bad.loc[[3, 250, 251], "size"] = "XXL"
    bad.to_parquet(tmp_path / "in.parquet")
    result = batch_predict(str(tmp_path / "m"), str(tmp_path / "in.parquet"), str(tmp_path / "out"),
                           chunk_rows=200, on_invalid="skip")
    assert (result.rows, result.rows_rejected) == (497, 3)
    rejects = pd.read_parquet(f"{tmp_path / 'out'}.rejects")
    assert sorted(rejects["row"]) == [3, 250, 251] and set(rejects["field"]) == {"size"}
    kept = fresh.drop(index=[3, 250, 251])
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "out")["prediction"], one_hot.predict(kept), rtol=1e-6)


def test_log_model_takes_training_data_and_a_policy_and_load_model_can_skip_the_cache(
        fitted: Any, tmp_path: Path) -> None:
    mloop.configure(home=str(tmp_path / "home"))
    model, columns = fitted["lightgbm"]
    train = trips(4_000)[0][columns]
    with mloop.start_run(experiment="categories") as run:
        version = run.log_model(model, "eta", input_example=train.dropna().head(5), training_data=train,
                                unknown_categories="missing")
    assert version.signature["unknown_categories"] == "missing"
    assert {c["name"]: c["nullable"] for c in version.signature["inputs"]} == {  # size: an unknown size is null
        "km": True, "hour": False, "zone": True, "size": True}

    shared = mloop.load_model("models:/eta/1")
    again = mloop.load_model("models:/eta/1")
    private = mloop.load_model("models:/eta/1", cache=False)
    assert shared.native is again.native and private.native is not shared.native
    fresh = trips(300, seed=3)[0][columns]
    np.testing.assert_allclose(private.predict(_records(fresh)), model.predict(fresh), rtol=1e-6)


def test_log_model_reads_nullability_from_the_schema_the_run_logged(fitted: Any, tmp_path: Path) -> None:
    mloop.configure(home=str(tmp_path / "home"))
    model, columns = fitted["sklearn pipeline"]
    train = trips(4_000)[0][columns]
    with mloop.start_run(experiment="categories") as run:
        run.log_schema(train)  # the training set's schema: vendor and km held nulls, hour never did
        logged = run.log_model(model, input_example=train.dropna().head(5))
    nullable = {c["name"]: c["nullable"] for c in logged.manifest["signature"]["inputs"]}
    assert nullable == {"km": True, "hour": False, "zone": True, "size": False, "vendor": True}


def test_signatures_written_before_categories_still_load() -> None:
    old = {"input_kind": "frame", "tensor_dtype": None, "outputs": [],
           "inputs": [{"name": "km", "type": "float", "nullable": False},
                      {"name": "zone", "type": "string", "nullable": False}]}
    sig = Signature.from_dict(old)
    assert sig.unknown_categories == "reject" and sig.to_dict() == old


@pytest.mark.parametrize(("change", "field"), [
    ({"categories": "abc"}, "signature.inputs[0].categories"),
    ({"categories": ["a", "a"]}, "signature.inputs[0].categories"),
    ({"categories": [["nested"]]}, "signature.inputs[0].categories"),
    ({"categories": list(range(100_001))}, "signature.inputs[0].categories"),
    ({"ordered": "yes"}, "signature.inputs[0].ordered"),
])
def test_a_malformed_category_column_in_a_manifest_is_refused(change: dict[str, Any], field: str) -> None:
    column = {"name": "zone", "type": "category", "nullable": True, "categories": ["a", "b"], "ordered": False}
    with pytest.raises(InvalidInputError) as caught:
        Signature.from_dict({"inputs": [{**column, **change}]})
    assert caught.value.field == field
    with pytest.raises(InvalidInputError) as caught:
        Signature.from_dict({"inputs": [column], "unknown_categories": "guess"})
    assert caught.value.field == "signature.unknown_categories"


@pytest.mark.parametrize("flavor", ["lightgbm", "xgboost"])
def test_a_model_logged_before_categories_were_recorded_predicts_from_strings(flavor: str, fitted: Any,
                                                                             tmp_path: Path) -> None:
    model, columns = fitted[flavor]
    old = {"inputs": [{"name": "km", "type": "float", "nullable": True},
                      {"name": "hour", "type": "integer", "nullable": False},
                      {"name": "zone", "type": "string", "nullable": True},
                      {"name": "size", "type": "string", "nullable": False}]}
    save_model(model, tmp_path / "m", signature=old)
    loaded = load_model(tmp_path / "m", cache=False)
    fresh = trips(500, seed=4)[0][columns]
    np.testing.assert_allclose(loaded.predict(_records(fresh)), model.predict(fresh), rtol=1e-6)
