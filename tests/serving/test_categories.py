"""A LightGBM model trained on category columns, served over real HTTP and scored in batch from Parquet.

Requests hold nulls and categories as JSON strings and get the in-memory model's predictions; an unknown
category under the default "reject" policy is a 422 naming the field, the value and the categories.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.config import Settings
from mloop.registry import save_model
from mloop.registry.signature import infer_signature
from mloop.serving import EndpointConfig, ServeConfig
from mloop.serving.batch import batch_predict
from tests.registry.test_categories import ZONES, _records, trips
from tests.serving.conftest import running

COLUMNS = ["km", "hour", "zone", "size"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[lgb.LGBMRegressor, Path]:
    train, target = trips(20_000)
    model = lgb.LGBMRegressor(n_estimators=20, num_leaves=31, verbose=-1).fit(train[COLUMNS], target)
    folder = tmp_path_factory.mktemp("categories") / "m"
    save_model(model, folder, input_example=train[COLUMNS].dropna().head(5), training_data=train[COLUMNS])
    return model, folder


def test_requests_with_nulls_and_categories_get_the_models_answers(trained, tmp_path: Path) -> None:
    model, folder = trained
    fresh = trips(400, seed=5)[0][COLUMNS]
    assert fresh["km"].isna().mean() > 0.08 and fresh["zone"].isna().mean() > 0.08
    config = ServeConfig(endpoints=(EndpointConfig(name="trips", uri=str(folder)),))
    with running(config, Settings.load(home=str(tmp_path / "home"))) as served:
        ready = served.get("/health/ready")
        assert ready.status_code == 200
        record = served.get("/openapi.json").json()["components"]["schemas"]["trips.record"]["properties"]
        assert record["zone"] == {"type": "string", "nullable": True, "enum": [*ZONES, None]}
        assert record["size"] == {"type": "string", "nullable": False, "enum": ["S", "M", "L"]}
        answer = served.post("/predict", _records(fresh))
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["predictions"], model.predict(fresh), rtol=1e-6)
        one = served.post("/predict", _records(fresh.head(1)))  # the per-value fast path, one row
        assert one.status_code == 200 and one.json()["predictions"] == pytest.approx(model.predict(fresh.head(1)))

        rows = _records(fresh.head(3))
        rows[2]["zone"] = "zone-99"
        refused = served.post("/predict", rows)
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert (error["field"], error["value"], error["row"]) == ("zone", "zone-99", 2)
        assert error["expected"].startswith("one of ['zone-00', 'zone-01'")
        assert "not one of the categories" in error["message"]


def test_batch_predict_reads_category_columns_as_strings_or_dictionaries(trained, tmp_path: Path) -> None:
    model, folder = trained
    fresh = trips(200_000, seed=6)[0][COLUMNS]
    table = pa.Table.from_pandas(fresh, preserve_index=False)
    # one file with the categories as plain strings, one with a dictionary in another order
    strings = table.set_column(2, "zone", table.column("zone").cast(pa.string()))
    (tmp_path / "in").mkdir()
    pq.write_table(strings.slice(0, 100_000), tmp_path / "in" / "a.parquet")
    shuffled = fresh.iloc[100_000:].assign(zone=fresh["zone"].iloc[100_000:].cat.reorder_categories(
        list(reversed(fresh["zone"].cat.categories))))
    shuffled.to_parquet(tmp_path / "in" / "b.parquet", index=False)

    result = batch_predict(str(folder), str(tmp_path / "in"), str(tmp_path / "out"), chunk_rows=50_000)
    assert result.rows == 200_000
    scored = pd.read_parquet(tmp_path / "out")
    np.testing.assert_allclose(scored["prediction"].to_numpy(), model.predict(fresh), rtol=1e-6)


@pytest.mark.parametrize("rows", [3, 2_500])  # the per-value checks, and the vectorized ones from 2,000 rows
def test_the_request_path_builds_the_training_dtype_and_applies_the_policy(rows: int) -> None:
    from mloop.registry.signature import ColumnSpec, Signature
    from mloop.serving._inputs import InputSpec

    zone = ColumnSpec(name="zone", type="category", nullable=True, categories=("north", "south"))
    floors = ColumnSpec(name="floor", type="category", nullable=False, categories=(1, 2, 3), ordered=True)
    columns = {"zone": (["south", None, "downtown"] * rows)[:rows], "floor": ([3, 1, 2.0] * rows)[:rows]}

    strict = InputSpec(Signature(inputs=(zone, floors)))
    (error,) = strict.check(columns, rows)
    assert (error.field, error.value, error.row, error.expected) == ("zone", "downtown", 2,
                                                                     "one of ['north', 'south'] or null")
    assert [e.value for e in strict.check({"zone": ["north"], "floor": [True]}, 1)] == [True]  # not the 1 it hashes as

    lenient = InputSpec(Signature(inputs=(zone, floors), unknown_categories="missing"))
    assert lenient.check(columns, rows) == []
    # floor may not be null, so an unknown floor cannot be read as missing: refused as under "reject"
    unknown_floor = {"zone": (["downtown"] * rows), "floor": ([2] * (rows - 1) + [7])}
    (error,) = lenient.check(unknown_floor, rows)
    assert (error.field, error.value, error.row, error.expected) == ("floor", 7, rows - 1, "one of [1, 2, 3]")
    frame = lenient.frame(lenient.coerce(columns, rows))
    assert frame["zone"].dtype == zone.dtype and frame["floor"].dtype == floors.dtype
    assert frame["zone"].head(3).tolist()[0] == "south" and frame["zone"].head(3).isna().tolist() == [False, True, True]
    assert frame["floor"].head(3).tolist() == [3, 1, 2]


def test_an_unknown_category_where_nulls_are_not_allowed_is_a_422_under_missing(tmp_path: Path) -> None:
    from tests.registry.test_categories import _one_hot_on_size

    train, target = trips(4_000)
    model = _one_hot_on_size().fit(train[["km", "size"]], target)
    given = infer_signature(train[["km", "size"]], training_data=train[["km", "size"]], unknown_categories="missing")
    save_model(model, tmp_path / "m", signature=given)  # no example: the model is not asked about a null size
    config = ServeConfig(endpoints=(EndpointConfig(name="sizes", uri=str(tmp_path / "m")),))
    with running(config, Settings.load(home=str(tmp_path / "home"))) as served:
        record = served.get("/openapi.json").json()["components"]["schemas"]["sizes.record"]["properties"]
        assert record["size"] == {"type": "string", "nullable": False, "enum": ["S", "M", "L"]}
        fresh = trips(2_500, seed=8)[0][["km", "size"]]  # the vectorized checks from 2,000 rows, and one row
        for rows in (_records(fresh), _records(fresh.head(1))):
            rows[-1]["size"] = "XXL"
            refused = served.post("/predict", rows)
            assert refused.status_code == 422, refused.text
            (error,) = refused.json()["errors"]
            assert (error["field"], error["value"], error["row"]) == ("size", "XXL", len(rows) - 1)
            rows[-1]["size"] = "M"
            answer = served.post("/predict", rows)
            assert answer.status_code == 200, answer.text
