"""The two hooks left for the schema and feature-store capabilities: extra checks and a feature lookup."""

from __future__ import annotations

import pandas as pd

from mloop.registry import load_model
from mloop.registry.signature import FieldError
from mloop.serving import ServedModel
from tests.serving.conftest import ROW


def test_checks_and_feature_lookup_run_on_the_request_path(model_dir) -> None:
    def hour_in_range(frame: pd.DataFrame) -> list[FieldError]:
        bad = frame.index[(frame["hour"] < 0) | (frame["hour"] > 23)]
        return [FieldError(field="hour", expected="0..23", value=int(frame["hour"][i]), row=int(i),
                           message=f"hour {frame['hour'][i]} is outside 0..23 (row {i})") for i in bad[:1]]

    store = {17: {"km": 3.5, "weather": "rain"}}

    def lookup(columns: dict[str, list], n: int) -> dict[str, list]:  # entity keys in, features out
        rows = [store[z] for z in columns["zone"]]
        return {**columns, "km": [r["km"] for r in rows], "weather": [r["weather"] for r in rows]}

    model = ServedModel(load_model(model_dir), checks=[hour_in_range], feature_lookup=lookup)
    columns, errors = model.prepare({"zone": [17], "hour": [8]}, 1)
    assert errors == [] and columns == {"hour": [8], "km": [3.5], "weather": ["rain"]}
    direct = ServedModel(load_model(model_dir))
    assert model.predict_columns(columns) == direct.predict_columns({k: [v] for k, v in ROW.items()})
    _, errors = model.prepare({"zone": [17], "hour": [77]}, 1)
    assert [(e.field, e.value, e.message) for e in errors] == [("hour", 77, "hour 77 is outside 0..23 (row 0)")]
