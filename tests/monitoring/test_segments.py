"""A declared segment, evaluated over a window's columns at once, selects the rows that the automation rules'
``when`` evaluator (its reference semantics) says hold, one row at a time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mloop.monitoring.segments import parse_segments, segment_mask


def _rows() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 400
    km = rng.normal(8, 4, n)
    km[rng.random(n) < 0.1] = np.nan
    city = rng.choice(["Oslo", "Lyon", "Kyiv"], n).astype(object)
    city[rng.random(n) < 0.1] = None
    mixed = np.array([[1, "a", None, 2.5][i % 4] for i in range(n)], dtype=object)
    return pd.DataFrame({"km": km, "hour": rng.integers(0, 24, n), "city": city, "mixed": mixed,
                         "flag": rng.random(n) < 0.5}, index=rng.permutation(n) + 1000)


CONDITIONS = ["km > 10", "km >= 10 and city = 'Oslo'", "not city = 'Oslo'", "city != 'Lyon' or hour < 3",
              "2 * km - hour / 3 >= 4", "km / (hour - 12) > 1", "-km < -9", "mixed < 2", "mixed = 'a'",
              "city > 3", "flag and hour > 20", "not (km > 5 or hour = 7)", "nowhere > 1 or hour = 0",
              "km * 0 = 0 and not nowhere = 'x'"]


@pytest.mark.parametrize("source", CONDITIONS)
def test_a_segment_selects_the_rows_its_condition_holds_for(source: str) -> None:
    rows = _rows()
    [(_, condition)] = parse_segments({"s": source})
    got = segment_mask(condition, rows)
    # ``when`` reads a missing value as None: a null number is one
    records = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
               for r in rows.to_dict("records")]
    want = np.array([condition.evaluate(r) for r in records])
    assert got.dtype == bool and len(got) == len(rows)
    assert got.tolist() == want.tolist(), source
    assert 0 < want.sum() < len(rows) or source in ("city > 3",), source  # the condition splits the rows
