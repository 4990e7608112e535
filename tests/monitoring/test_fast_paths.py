"""The monitor's fast paths give what the plain ones give: the DuckDB scan of the log the rows of reading each
file, the listing that skips old days the store's own listing, and the stored roll-ups the windows rolled up."""

from __future__ import annotations

import io
import os

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.errors import InvalidInputError
from mloop.monitoring import _log, create_monitor, run_monitor, series
from mloop.monitoring._runner import training_reference
from mloop.monitoring.rollup import SUMMED, WORST, rolled_up_series
from mloop.monitoring.segments import parse_segments
from mloop.monitoring.windows import LOG_COLUMNS, PREDICTION, summarize
from mloop.serving.predlog import PREFIX
from mloop.store.blob import open_blob_store
from tests.monitoring.conftest import T0, write_labels, write_predictions
from tests.monitoring.test_monitor import (  # noqa: F401
    INPUTS,
    SEGMENTS,
    WINDOW,
    WINDOWS,
    model_version,
    traffic,
)

MS = 1000


def _put(blobs, day: str, name: str, table: pa.Table) -> str:  # type: ignore[no-untyped-def]
    key = f"{PREFIX}/eta/{day}/{name}-1-abcd.parquet"
    sink = io.BytesIO()
    pq.write_table(table, sink)
    blobs.put_bytes(key, sink.getvalue())
    return key


def _log_table(times: list[int], inputs: pa.Array, version: str = "1") -> pa.Table:
    n = len(times)
    return pa.table({"id": [f"q{t}-0" for t in times], "time": pa.array(times).cast(pa.timestamp("ms", tz="UTC")),
                     "model": ["eta"] * n, "version": [version] * n, "role": ["primary"] * n, "inputs": inputs,
                     "output": ['"yes"', "2.5", None, '"a \\"quoted\\" one"'][:n] + ["1"] * max(0, n - 4),
                     "latency_ms": np.linspace(1, 9, n), "proba": pa.nulls(n, pa.string())})


def test_the_duckdb_scan_reads_what_reading_each_file_reads(tmp_path) -> None:
    """Files of three schemas (two versions' inputs, JSON-text inputs), a column of nulls only, rows on both
    sides of a window edge and of midnight: the scan's rows are the per-file reader's, value for value."""
    blobs = open_blob_store(str(tmp_path / "artifacts"))
    start = int(pd.Timestamp("2026-03-08 23:55", tz="UTC").timestamp() * MS)
    end = start + 300 * MS
    keys = []
    for i in range(6):  # version 1: a number with nulls and a category
        times = [start - 2 * MS + i * 61_000 + j for j in range(5)]
        km = pa.array([1.5, None, 3.0, float("nan"), 2.0 + i])
        zone = pa.array(["north", None, "center", "north", "harbor"])
        keys.append(_put(blobs, "2026-03-08", f"2355{i:02d}000000",
                         _log_table(times, pa.StructArray.from_arrays([km, zone], names=["km", "zone"]))))
    hour = pa.array([1, 2, 3], pa.int64())
    keys.append(_put(blobs, "2026-03-09", "000001000000",  # version 2 after midnight, another input
                     _log_table([end - 1, end, end + 1], pa.StructArray.from_arrays([hour], names=["hour"]), "2")))
    nothing = pa.nulls(3, pa.null())  # a batch where an input was never sent: Arrow's null type
    gone = pa.StructArray.from_arrays([pa.array([4.0, 5.0, 6.0]), nothing], names=["km", "gone"])
    keys.append(_put(blobs, "2026-03-09", "000002000000", _log_table([start + 5, start + 6, start + 7], gone)))
    keys.append(_put(blobs, "2026-03-09", "000003000000",  # inputs written as JSON text
                     _log_table([start + 9, start + 10], pa.array(['{"km": 7.5, "zone": "x"}', None]))))

    assert _log._local_paths(blobs, keys) is not None  # the local store takes the DuckDB path
    fast = _log.read_rows(blobs, keys, start, end)
    plain = [_log._flat(table) for table in _log._read_each(blobs, keys, start, end)]
    expected = pd.concat(plain, ignore_index=True)
    expected["time"] = expected["time"].astype("int64")
    pd.testing.assert_frame_equal(fast, expected)
    assert len(fast) == 4 * 5 + 1 + 3 + 2  # the first file's rows are before the window, the sixth's after it
    assert fast["time"].between(start, end - 1).all()


def test_listing_skips_old_days_and_finds_what_the_store_lists(tmp_path) -> None:
    blobs = open_blob_store(str(tmp_path / "artifacts"))
    table = _log_table([0], pa.StructArray.from_arrays([pa.array([1.0])], names=["km"]))
    for day, name in [("2026-03-06", "120000000000"), ("2026-03-07", "235959999999"), ("2026-03-08", "000000000001"),
                      ("2026-03-08", "101010000000"), ("2026-03-09", "000000000000")]:
        _put(blobs, day, name, table)
    blobs.put_bytes(f"{PREFIX}/eta/2026-03-08/.tmp-half-written", b"x")
    blobs.put_bytes(f"{PREFIX}/eta/2026-03-08/notes.txt", b"x")
    since = int(pd.Timestamp("2026-03-07 23:59:59.999", tz="UTC").timestamp() * MS)
    until = int(pd.Timestamp("2026-03-09", tz="UTC").timestamp() * MS)
    everything = [k for k in blobs.list(f"{PREFIX}/eta/") if k.endswith(".parquet")]
    want = sorted((k for k in everything if since <= (_log.written_ms(k) or -1) < until),
                  key=lambda k: (_log.written_ms(k), k))
    assert _log.files_since(blobs, "eta", since, until) == want and len(want) == 3
    assert _log.written_ms(f"{PREFIX}/eta/2026-02-30/120000000000-1-a.parquet") is None  # no such day


def test_a_log_file_linked_out_of_the_store_is_neither_listed_nor_read(tmp_path) -> None:
    blobs = open_blob_store(str(tmp_path / "artifacts"))
    table = _log_table([1, 2], pa.StructArray.from_arrays([pa.array([1.0, 2.0])], names=["km"]))
    kept = _put(blobs, "2026-03-08", "000000000100", table)
    secret = tmp_path / "outside.parquet"
    pq.write_table(table, secret)
    link = f"{PREFIX}/eta/2026-03-08/000000000200-1-link.parquet"
    os.symlink(secret, tmp_path / "artifacts" / link)
    assert _log.files_since(blobs, "eta", 0) == [kept]
    with pytest.raises(InvalidInputError) as refused:
        _log.read_rows(blobs, [kept, link], 0, 10)
    assert refused.value.field == "path"


def _window_rows(rows: pd.DataFrame, labels: list[str | None]) -> pd.DataFrame:
    """A window's rows shaped as the log reader returns them (labels joined), straight from the traffic."""
    frame = pd.DataFrame({"id": rows["id"], "time": rows["time"].astype("int64") // 1_000_000,
                          "version": rows["version"], "role": rows["role"], "latency_ms": rows["latency_ms"],
                          "output": [orjson.dumps(v).decode() for v in rows["output"]], "proba": rows["proba"]})
    for name in INPUTS:
        frame[name] = rows[name].to_numpy()
    return frame.assign(label=labels).reset_index(drop=True)


def test_every_window_equals_summarizing_its_rows_one_by_one(settings, model_version) -> None:  # noqa: F811
    """The batch run (DuckDB scan, roll-ups) against each window summarized on its own from the traffic itself:
    nulls, categories, late labels, the night US clocks moved."""
    rows, truth = traffic(model_version)
    write_predictions(settings, "eta", rows, INPUTS)
    create_monitor("eta-5m", "eta", window="5m", slices=["zone"], segments=SEGMENTS, settings=settings)
    end = pd.Timestamp(T0) + WINDOWS * WINDOW
    run_monitor("eta-5m", now=end + pd.Timedelta(minutes=3), alerts=False, settings=settings)
    labelled = (rows["w"] % 3 != 0).to_numpy()  # labels come late, for two windows in three
    write_labels(settings, rows["id"][labelled].tolist(), truth[labelled].tolist(), end + pd.Timedelta(hours=1))
    again = run_monitor("eta-5m", now=end + pd.Timedelta(hours=1, minutes=5), alerts=False, settings=settings)
    assert again.recomputed == sum(1 for w in range(WINDOWS) if w % 3)

    reference, schema = training_reference("eta", "1", settings)
    found = series("eta-5m", settings=settings)
    got = {(int(s.value // 1_000_000), m, c, sl): v for s, m, c, sl, v in
           zip(found["start"], found["metric"], found["column"], found["slice"], found["value"], strict=True)}
    want: dict[tuple[int, str, str, str], float] = {}
    previous = None
    texts = [orjson.dumps(int(t)).decode() if ok else None for t, ok in zip(truth, labelled, strict=True)]
    for w in range(WINDOWS):
        part = (rows["w"] == w).to_numpy()
        frame = _window_rows(rows[part], [t for t, p in zip(texts, part, strict=True) if p])
        summary = summarize(frame, task="classification", reference=reference, schema=schema, previous=previous,
                            slices=("zone",), segments=parse_segments(SEGMENTS))
        previous = summary.profile
        start = int((pd.Timestamp(T0) + w * WINDOW).timestamp() * MS)
        for p in summary.points:
            want[(start, p.metric, p.column, p.slice)] = p.value
        want[(start, "errors", "", "")] = want[(start, "error_rate", "", "")] = 0.0
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), key

    _rollups_equal_the_windows(found, settings)


def _rollups_equal_the_windows(found: pd.DataFrame, settings) -> None:  # type: ignore[no-untyped-def]
    """The stored roll-ups (refreshed by the runs above, the recomputed windows included) against the windows
    rolled up in pandas, for whole buckets and for a range that cuts them."""
    how = {m: "sum" for m in SUMMED} | {m: "max" for m in WORST}
    cut = (pd.Timestamp(T0) + pd.Timedelta(minutes=25), pd.Timestamp(T0) + pd.Timedelta(minutes=70))
    for every, step, (start, end) in [("1h", "1h", (None, None)), ("1d", "1D", (None, None)), ("1h", "1h", cut)]:
        windows = found
        if start is not None:
            windows = found[(found["start"] >= start) & (found["start"] < end)]
        keys = [windows["start"].dt.floor(step), "version", "role", "metric", "column", "slice"]
        expected = windows.groupby(keys, sort=True)["value"].agg(["sum", "max", "mean"]).reset_index()
        expected["value"] = [row[how.get(row["metric"], "mean")] for _, row in expected.iterrows()]
        rolled = rolled_up_series("eta-5m", every, start=start, end=end, settings=settings)
        assert len(rolled) == len(expected) > 0, every
        names = ["start", "version", "role", "metric", "column", "slice"]
        rolled = rolled.assign(start=[int(t.timestamp() * MS) for t in rolled["start"]])
        expected = expected.assign(start=[int(t.timestamp() * MS) for t in expected["start"]])
        rolled, expected = (f.sort_values(names, ignore_index=True) for f in (rolled, expected))
        pd.testing.assert_frame_equal(rolled[names], expected[names], check_dtype=False)
        assert np.allclose(rolled["value"], expected["value"], rtol=1e-12, atol=1e-12, equal_nan=True), every


def _mixed_batch(shuffled: bool, classes: bool) -> pd.DataFrame:
    """Rows of two versions and two roles over windows 0, 1, 3 and 4 (2 is empty, 4 holds one row): numbers with
    nulls and infinities, text categories (all missing in window 1), integers out of range, an input only version
    1 sends, an object column of mixed types, booleans, labels for some rows (and two without a version when
    ``shuffled``); with ``classes``, class names among the numbers one window outputs."""
    rng = np.random.default_rng(11)
    n = 600
    window = np.r_[rng.choice([0, 1, 3], n - 1), 4]
    version = np.where(rng.random(n) < 0.6, "1", "2").astype(object)
    if shuffled:
        version[[7, 70]] = None  # rows without a version belong to no window
    role = np.where(rng.random(n) < 0.7, "primary", "shadow")
    time = window * 300_000 + rng.integers(0, 300_000, n)
    zone = rng.choice(["north", "south", "center", "harbor", "moon"], n).astype(object)
    zone[(rng.random(n) < 0.1) | (window == 1)] = None
    km = rng.normal(5, 2, n)
    km[rng.random(n) < 0.1] = np.nan
    km[[5, 50]] = [np.inf, -np.inf]
    output = np.round(rng.normal(3, 1, n), 3).astype(str).astype(object)
    if classes:
        output[(window == 3) & (version == "1") & (rng.random(n) < 0.3)] = '"yes"'
    label = np.where((window < 2) & (rng.random(n) < 0.5), np.round(rng.normal(3, 1, n), 2).astype(str), None)
    rows = pd.DataFrame({
        "id": [f"r{i}-{i % 3 // 2}" for i in range(n)], "time": time, "version": pd.array(version, dtype="str"),
        "role": pd.array(role, dtype="str"), "latency_ms": rng.gamma(2, 2, n), "output": pd.array(output, dtype="str"),
        "proba": None, "km": km, "zone": pd.array(zone, dtype="str"), "hour": rng.integers(0, 30, n),
        "gone": np.where(version == "1", rng.normal(0, 1, n), np.nan),
        "mixed": [[1, "a", None, 2.5][i % 4] for i in range(n)], "flag": rng.random(n) < 0.5,
        "label": pd.array(label, dtype="str")})
    order = rng.permutation(n) if shuffled else np.lexsort((role, version, window))
    return rows.iloc[order].reset_index(drop=True)


@pytest.mark.parametrize("shuffled", [True, False])
@pytest.mark.parametrize("case", ["reference and schema", "prediction in the reference", "unique check",
                                  "nothing to compare with", "classes"])
def test_a_batch_of_windows_equals_each_window_summarized_alone(case: str, shuffled: bool) -> None:
    """Every (window, version, role) of a batch summarized together against its rows summarized alone: figures
    and profile, through each branch of the batch path (sorted or not, numbers, categories, objects, empty and
    one-row windows, columns missing in a window, class names among numeric outputs, labels, schema checks that
    add up over rows and one that does not)."""
    from mloop.monitoring.batch import WindowBatch
    from mloop.validation import infer_schema
    from mloop.validation.profile import profile

    rows = _mixed_batch(shuffled, classes=case == "classes")
    rng = np.random.default_rng(5)
    train = pd.DataFrame({"km": rng.normal(5, 2, 3000), "zone": rng.choice(["north", "south", "center"], 3000),
                          "hour": rng.integers(0, 24, 3000)})
    if case == "prediction in the reference":
        train[PREDICTION] = rng.normal(3, 1, 3000)
    reference = profile(train) if case != "nothing to compare with" else None
    schema = infer_schema(train[["km", "zone", "hour"]]) if case != "nothing to compare with" else None
    if schema is not None:
        schema["km"].max_null_share = 0.08
        schema["hour"].unique = case == "unique check"
    task = "classification" if case == "classes" else "regression"
    known = set(train.columns) if reference is not None else set()
    # declared segments over numbers, categories, an input one version lacks, an object column, arithmetic
    segments = parse_segments({"long": "km > 6", "north-late": "zone = 'north' or not hour < 20",
                               "gone": "gone > 0", "mixed-a": "mixed = 'a'", "double": "2 * km - hour / 3 >= 4"})

    batch = WindowBatch(rows, 300_000)
    assert (batch.order is None) != shuffled
    previous: dict[tuple[str, str], object] = {}
    seen = []
    segmented: set[str] = set()
    for window in batch.windows:
        got = batch.summarize(window, task=task, reference=reference, schema=schema,
                              previous=previous.get((window.version, window.role)), slices=("zone", "mixed"),
                              known=known, segments=segments)
        alone = rows[(rows["time"] // 300_000 * 300_000 == window.start) & (rows["version"] == window.version)
                     & (rows["role"] == window.role)]
        empty = [c for c in alone.columns if c not in LOG_COLUMNS and c not in known and alone[c].isna().all()]
        want = summarize(alone.drop(columns=empty), task=task, reference=reference, schema=schema,
                         previous=previous.get((window.version, window.role)), slices=("zone", "mixed"),
                         segments=segments)
        previous[(window.version, window.role)] = want.profile
        assert _points(got) == _points(want), window
        segmented.update(p.slice for p in got.points)
        assert orjson.dumps(got.profile.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY) == \
            orjson.dumps(want.profile.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY), window
        seen.append((window.start // 300_000, window.version, window.role, window.rows))
    assert {w for w, *_ in seen} == {0, 1, 3, 4} and [r for w, *_, r in seen if w == 4] == [1]
    assert len(seen) == len(set(seen)) > 8  # every version and role of a window apart
    assert {s for s in segmented if s.startswith("segment=")} == {f"segment={n}" for n, _ in segments}
    assert sum(count for *_, count in seen) == len(rows) - 2 * shuffled


def _points(summary) -> dict:  # type: ignore[no-untyped-def]
    """The points as stored (the last of a repeated one), NaN made comparable."""
    return {(p.metric, p.column, p.slice): "nan" if p.value != p.value else p.value for p in summary.points}


def test_roll_ups_of_a_run_of_many_batches_over_two_days_equal_rolling_up_from_scratch(settings, model_version,  # noqa: F811
                                                                                       monkeypatch) -> None:
    """Hours are rolled up with each batch and days once their last batch is written: the same buckets as
    rolling up every window again."""
    from mloop.monitoring import _runner
    from mloop.monitoring.rollup import refresh_rollups

    rows, _ = traffic(model_version)
    rows.loc[rows["w"] >= 8, "time"] += pd.Timedelta(hours=18)  # windows 8-15 just after midnight
    write_predictions(settings, "eta", rows, INPUTS)
    create_monitor("eta-5m", "eta", window="5m", settings=settings)
    monkeypatch.setattr(_runner, "BATCH_SECONDS", 900)  # three windows a batch: a day of several batches
    run_monitor("eta-5m", now=pd.Timestamp(T0) + pd.Timedelta(minutes=25), alerts=False, settings=settings)
    run_monitor("eta-5m", now=pd.Timestamp(T0) + pd.Timedelta(hours=20), alerts=False, settings=settings)
    ran = {every: rolled_up_series("eta-5m", every, settings=settings) for every in ("1h", "1d")}
    refresh_rollups("eta-5m", settings=settings)
    for every, found in ran.items():
        again = rolled_up_series("eta-5m", every, settings=settings)
        assert len(found) > 0 and found["start"].dt.day.nunique() == 2, every
        pd.testing.assert_frame_equal(found, again)
