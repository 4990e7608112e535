"""The prediction log's compaction: a closed hour's files joined into one change nothing a reader sees, whether
the compaction finished, stopped halfway, or happened while a monitor was reading."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.monitoring import _log, create_monitor, get_monitor, run_monitor, series
from mloop.monitoring._runner import Runner
from mloop.serving._logfiles import compact_files, live_keys, new_key, parse_key
from mloop.serving.predlog import PREFIX, PredictionLog, compact_predictions, read_predictions
from mloop.store.blob import open_blob_store
from tests.monitoring.conftest import T0, write_labels, write_predictions
from tests.monitoring.test_monitor import INPUTS, WINDOW, WINDOWS, model_version, traffic  # noqa: F401

END = pd.Timestamp(T0) + WINDOWS * WINDOW  # 16 five-minute windows from 06:00: the log spans hours 06 and 07
LATER = END.to_pydatetime() + timedelta(hours=3)  # both hours closed two hours ago and more


def _log_keys(settings) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(open_blob_store(settings.artifact_root).list(f"{PREFIX}/eta/"))


def _series(name: str, settings) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    found = series(name, settings=settings).drop(columns=["monitor"], errors="ignore")
    return found.sort_values(["start", "metric", "column", "slice", "version", "role"]).reset_index(drop=True)


def test_a_compacted_log_gives_the_monitor_the_windows_and_relabelling_of_the_files_it_joined(
        settings, model_version) -> None:  # noqa: F811
    rows, truth = traffic(model_version)
    write_predictions(settings, "eta", rows, INPUTS)  # one file per minute of traffic: 80 files
    plain = _log_keys(settings)
    create_monitor("before", "eta", window="5m", slices=["zone"], settings=settings)
    run_monitor("before", now=END + pd.Timedelta(minutes=3), alerts=False, settings=settings)

    result = compact_predictions(settings, now=LATER)
    assert result == {"compacted": len(plain), "deleted": 0}  # the joined files go at the next run
    assert len(read_predictions(settings, "eta")) == len(rows)
    assert compact_predictions(settings, now=LATER) == {"compacted": 0, "deleted": len(plain)}
    kept = _log_keys(settings)
    assert [parse_key(k).first[:2] for k in kept] == ["06", "07"]  # type: ignore[union-attr]
    assert all(parse_key(k).compacted for k in kept)  # type: ignore[union-attr]
    assert compact_predictions(settings, now=LATER) == {"compacted": 0, "deleted": 0}  # nothing left to do
    assert len(read_predictions(settings, "eta")) == len(rows)

    create_monitor("after", "eta", window="5m", slices=["zone"], settings=settings)
    run_monitor("after", now=END + pd.Timedelta(minutes=3), alerts=False, settings=settings)
    pd.testing.assert_frame_equal(_series("after", settings), _series("before", settings))

    # labels for every other window arrive later: both monitors find their windows in the compacted files
    labelled = (rows["w"] % 2 == 0).to_numpy()
    write_labels(settings, rows["id"][labelled].tolist(), truth[labelled].tolist(), END + pd.Timedelta(hours=4))
    later = END + pd.Timedelta(hours=4, minutes=5)
    for name in ("before", "after"):
        report = run_monitor(name, now=later, alerts=False, settings=settings)
        assert report.recomputed == WINDOWS // 2
    after = _series("after", settings)
    pd.testing.assert_frame_equal(after, _series("before", settings))
    assert (after["metric"] == "accuracy").sum() >= WINDOWS // 2


def test_a_compaction_stopped_before_deleting_doubles_no_row(settings, model_version) -> None:  # noqa: F811
    rows, _ = traffic(model_version)
    write_predictions(settings, "eta", rows, INPUTS)
    blobs = open_blob_store(settings.artifact_root)
    six = [k for k in _log_keys(settings) if parse_key(k).first.startswith("06")]  # type: ignore[union-attr]
    create_monitor("whole", "eta", window="5m", settings=settings)
    run_monitor("whole", now=END + pd.Timedelta(minutes=3), alerts=False, settings=settings)

    assert sorted(compact_files(blobs, six)) == six  # stored, and nothing deleted: a crash right here
    listed = _log_keys(settings)
    assert len(listed) == len(set(listed)) and set(six) < set(listed)
    assert not set(six) & set(live_keys(listed))
    assert not set(six) & set(_log.files_since(blobs, "eta", 0))
    assert len(read_predictions(settings, "eta")) == len(rows)
    assert read_predictions(settings, "eta")["id"].is_unique

    create_monitor("halfway", "eta", window="5m", settings=settings)
    run_monitor("halfway", now=END + pd.Timedelta(minutes=3), alerts=False, settings=settings)
    pd.testing.assert_frame_equal(_series("halfway", settings), _series("whole", settings))
    assert compact_predictions(settings, now=LATER)["deleted"] >= len(six)  # gc finishes the job
    assert len(read_predictions(settings, "eta")) == len(rows)


def test_a_monitor_whose_files_were_compacted_after_it_listed_them_lists_again(
        settings, model_version) -> None:  # noqa: F811
    rows, _ = traffic(model_version)
    write_predictions(settings, "eta", rows, INPUTS)
    create_monitor("eta-5m", "eta", window="5m", settings=settings)
    runner = Runner(get_monitor("eta-5m", settings=settings), settings)
    runner.error_files = []  # what a run lists first: no request failed here
    blobs = open_blob_store(settings.artifact_root)
    listed = _log.spans(_log.files_since(blobs, "eta", 0))
    start = int(T0.timestamp() * 1000)
    before, _ = runner._load(start, start + 3_600_000, listed)

    compact_predictions(settings, now=LATER)  # joined
    compact_predictions(settings, now=LATER)  # and the listed files deleted
    assert not any(blobs.exists(k) for _, _, k in listed)
    again, _ = runner._load(start, start + 3_600_000, listed)
    assert len(again) == len(before) == int((rows["time"] < T0 + timedelta(hours=1)).sum())
    assert sorted(again["id"]) == sorted(before["id"])


def test_one_compacted_file_per_schema_when_the_inputs_changed_within_the_hour(tmp_path) -> None:
    from mloop.config import Settings

    settings = Settings.load(home=str(tmp_path / "home"))
    blobs = open_blob_store(settings.artifact_root)
    day = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # the night European clocks went back: names stay UTC
    keys = []
    for minute in range(6):
        inputs = pa.array([{"km": 1.5 * minute}]) if minute < 3 else pa.array([{"km": "far", "zone": "b"}])
        table = pa.table({"id": [f"r{minute}-0"], "time": pa.array([day + timedelta(minutes=minute)],
                                                                    pa.timestamp("ms", tz="UTC")),
                          "model": ["eta"], "version": ["1"], "role": ["primary"], "inputs": inputs,
                          "output": ["1.0"], "latency_ms": [1.0], "proba": pa.nulls(1, pa.string())})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        keys.append(new_key(f"{PREFIX}/eta", day + timedelta(minutes=minute, seconds=1)))
        blobs.put_bytes(keys[-1], sink.getvalue())
    assert compact_predictions(settings, now=day + timedelta(hours=3)) == {"compacted": 6, "deleted": 0}
    assert compact_predictions(settings, now=day + timedelta(hours=3)) == {"compacted": 0, "deleted": 6}
    kept = _log_keys(settings)
    assert len(kept) == 2  # the two parts of one compaction, named by the span of both
    parts = sorted((parse_key(k).first, parse_key(k).last, parse_key(k).part, parse_key(k).parts)  # type: ignore
                   for k in kept)
    assert parts == [("010001000000", "010501000000", 1, 2), ("010001000000", "010501000000", 2, 2)]
    assert sorted(read_predictions(settings, "eta")["id"]) == [f"r{m}-0" for m in range(6)]


def test_gc_leaves_the_last_two_hours_alone(tmp_path) -> None:
    from mloop.config import Settings

    settings = Settings.load(home=str(tmp_path / "home"))
    log = PredictionLog(settings, flush_seconds=60, compact=False)
    for i in range(3):
        log.record("eta", "1", "primary", f"r{i}", {"km": [float(i)]}, [1.0], 0.001, 1)
        log.flush()
    log.close()
    assert compact_predictions(settings) == {"compacted": 0, "deleted": 0}  # written this hour
    env = {**os.environ, "MLOOP_HOME": str(tmp_path / "home")}
    env.pop("MLOOP_TRACKING_URI", None)
    out = subprocess.run([sys.executable, "-m", "mloop", "gc"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "joined" not in out.stdout and len(_log_keys(settings)) == 3


def test_the_serving_log_compacts_each_hour_it_wrote_once_the_hour_has_closed(tmp_path) -> None:
    from mloop.config import Settings

    settings = Settings.load(home=str(tmp_path / "home"))
    log = PredictionLog(settings, flush_seconds=60)
    for i in range(3):
        log.record("eta", "1", "primary", f"r{i}", {"km": [float(i)]}, [1.0], 0.001, 1)
        log.flush()
    written = _log_keys(settings)
    assert len(written) == 3 and log._compacting is None  # this hour is still open
    try:
        next_hour = datetime.now(UTC) + timedelta(hours=1)
        log._compact_closed(next_hour, [])
        assert log._compacting is not None
        log._compacting.result(timeout=60)
        listed = _log_keys(settings)
        compacted = [k for k in listed if parse_key(k).compacted]  # type: ignore[union-attr]
        assert len(compacted) == 1 and set(written) < set(listed)  # the joined files stay until the next hour
        assert sorted(read_predictions(settings, "eta")["id"]) == ["r0-0", "r1-0", "r2-0"]

        log.record("eta", "1", "primary", "r3", {"km": [3.0]}, [1.0], 0.001, 1)
        log.flush()
        log._compact_closed(next_hour + timedelta(hours=1), [])
        log._compacting.result(timeout=60)
        assert not set(written) & set(_log_keys(settings))  # an hour later they are gone
        assert sorted(read_predictions(settings, "eta")["id"]) == ["r0-0", "r1-0", "r2-0", "r3-0"]
    finally:
        log.close()


@pytest.mark.parametrize("now", [datetime(2026, 3, 8, 23, 59, 59, 999_999, tzinfo=UTC),
                                 datetime(2026, 3, 9, 0, 0, tzinfo=UTC)])
def test_a_file_written_at_midnight_is_named_by_one_reading_of_the_clock(now: datetime) -> None:
    key = new_key("predictions/eta", now)
    folder, _, name = key.rpartition("/")
    assert folder == f"predictions/eta/{now:%Y-%m-%d}" and name.startswith(f"{now:%H%M%S%f}-{os.getpid()}.")
    assert _log.written_ms(key) == int(now.timestamp() * 1000)


_INPUTS = pa.struct([("km", pa.float64()), ("zone", pa.string())])


def _one_row_file(blobs, key: str, row_id: str, at: datetime, km: float | None) -> None:  # type: ignore[no-untyped-def]
    table = pa.table({"id": [row_id], "time": pa.array([at], pa.timestamp("ms", tz="UTC")), "model": ["eta"],
                      "version": ["1"], "role": ["primary"], "inputs": pa.array([{"km": km, "zone": "b"}], _INPUTS),
                      "output": ["1.0"], "latency_ms": [1.0], "proba": pa.nulls(1, pa.string())})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    blobs.put_bytes(key, sink.getvalue())


def test_replicas_that_share_a_process_id_and_a_store_keep_each_others_rows(tmp_path) -> None:
    """Containers all run as process 1: what one compacts must not hide what the other wrote in that hour."""
    from mloop.config import Settings

    settings = Settings.load(home=str(tmp_path / "home"))
    blobs = open_blob_store(settings.artifact_root)
    hour = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # the night European clocks moved forward
    mine, theirs = [], []
    for minute in range(0, 60, 5):
        at = hour + timedelta(minutes=minute)
        for writer, keys in (("1.aaaaaa", mine), ("1.bbbbbb", theirs)):
            keys.append(f"{PREFIX}/eta/2026-03-29/{at + timedelta(seconds=1):%H%M%S%f}-{writer}-"
                        f"{len(keys):08x}.parquet")
            _one_row_file(blobs, keys[-1], f"{writer}-{minute}", at, None if minute % 10 else float(minute))
    before = pa.concat_tables([pq.read_table(io.BytesIO(blobs.get_bytes(k))) for k in mine])
    assert compact_files(blobs, mine) == mine
    compacted = [k for k in _log_keys(settings) if "-compact-" in k]
    assert len(compacted) == 1 and "-1.aaaaaa-compact-" in compacted[0]
    assert pq.read_table(io.BytesIO(blobs.get_bytes(compacted[0]))).equals(before)  # the same rows, types, order
    ids = read_predictions(settings, "eta")["id"]
    assert len(ids) == 24 and ids.is_unique  # mine once (compacted or not), theirs all
    assert set(_log.files_since(blobs, "eta", 0)) == {*compacted, *theirs}
