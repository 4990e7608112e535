"""The prediction log's compaction when something goes wrong around it: a store that fails halfway, an unreadable
file, a flush stuck on a slow store, two logs or two garbage collections at once, a reader whose listing spans a
compaction. Every row is read once, and none is lost, whatever happened."""

from __future__ import annotations

import io
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.config import Settings
from mloop.errors import BackendError
from mloop.monitoring import _log
from mloop.serving import predlog
from mloop.serving._logfiles import compact_files, live_keys, parse_key
from mloop.serving.predlog import PREFIX, PredictionLog, compact_predictions, read_predictions
from mloop.store.blob import open_blob_store
from mloop.store.blob.local import LocalBlobStore

# yesterday's six o'clock: closed long enough ago for gc, recent enough to be kept by the retention
HOUR = (datetime.now(UTC) - timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
LATER = HOUR + timedelta(hours=4)
WRITER = "1.aaaaaa"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(home=str(tmp_path / "home"))


@pytest.fixture(params=["local", "object store"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A log in a local folder, or in a store without local paths (fsspec's in-memory one), whose compaction reads
    each file through the store."""
    if request.param == "local":
        return Settings.load(home=str(tmp_path / "home"))
    return Settings.load(home=str(tmp_path / "home"), artifact_root=f"memory://mloop-{uuid.uuid4().hex}/artifacts")


def _parquet(row_id: str, at: datetime, km: object) -> bytes:
    """One logged prediction; the type of ``km`` (float, int, null) is the file's input schema, as the serving
    log infers it from each second's values."""
    table = pa.table({"id": [row_id], "time": pa.array([at], pa.timestamp("ms", tz="UTC")), "model": ["eta"],
                      "version": ["1"], "role": ["primary"], "inputs": pa.array([{"km": km}]), "output": ["1.0"],
                      "latency_ms": [1.0], "proba": pa.nulls(1, pa.string())})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _write(blobs, minute: int, km: object, writer: str = WRITER) -> str:  # type: ignore[no-untyped-def]
    """The file a writer stored one second after minute ``minute`` of HOUR, holding the row ``m<minute>``."""
    at = HOUR + timedelta(minutes=minute)
    written = at + timedelta(seconds=1)
    key = f"{PREFIX}/eta/{written:%Y-%m-%d}/{written:%H%M%S%f}-{writer}-{uuid.uuid4().hex[:8]}.parquet"
    blobs.put_bytes(key, _parquet(f"m{minute}", at, km))
    return key


def _ids(settings: Settings) -> list[str]:
    return sorted(read_predictions(settings, "eta", with_feedback=False)["id"])


def _gc(settings: Settings) -> None:
    """``mloop gc``'s compaction, run twice as a scheduled gc would: files joined by one run go at the next."""
    compact_predictions(settings, now=LATER)
    compact_predictions(settings, now=LATER)


class _FailingStore:
    """A store whose ``fail_at``-th put of a compacted file fails, as an object store's PUT can."""

    def __init__(self, store: Any, fail_at: int) -> None:
        self.store, self.fail_at, self.compacted_puts = store, fail_at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def put_bytes(self, key: str, data: bytes):  # type: ignore[no-untyped-def]
        if "-compact-" in key:
            self.compacted_puts += 1
            if self.compacted_puts == self.fail_at:
                raise BackendError(f"Could not write '{key}': the store timed out")
        return self.store.put_bytes(key, data)


def test_a_compaction_that_failed_between_two_schemas_hides_and_loses_no_row(any_store: Settings) -> None:
    """The serving log infers each second's input types, so one hour's files have several schemas, interleaved."""
    settings = any_store
    blobs = open_blob_store(settings.artifact_root)
    keys = [_write(blobs, minute, 1.5 * minute if minute % 2 == 0 else minute) for minute in range(6)]
    failing = _FailingStore(blobs, fail_at=2)  # the first schema's file stored, the second not
    with pytest.raises(BackendError):
        compact_files(failing, keys)
    assert _ids(settings) == [f"m{m}" for m in range(6)]

    _gc(settings)  # gc compacts the hour again and deletes what nobody needs
    assert _ids(settings) == [f"m{m}" for m in range(6)]
    assert not set(keys) & set(blobs.list(f"{PREFIX}/eta/"))
    # the files of both schemas are read by the monitor's reader too, each row once
    assert sorted(_log.rows_since(blobs, "eta", 0, int(LATER.timestamp() * 1000))["id"]) == [f"m{m}" for m in range(6)]


def test_an_unreadable_file_is_neither_hidden_nor_deleted_by_a_compaction_of_its_hour(any_store: Settings) -> None:
    settings = any_store
    blobs = open_blob_store(settings.artifact_root)
    keys = [_write(blobs, minute, 1.5 * minute) for minute in range(5)]
    good = blobs.get_bytes(keys[2])
    blobs.put_bytes(keys[2], b"not parquet yet")  # unreadable when gc comes (a store error, a half-synced copy)
    _gc(settings)
    assert blobs.exists(keys[2]) and keys[2] in live_keys(blobs.list(f"{PREFIX}/eta/"))
    blobs.put_bytes(keys[2], good)  # readable again
    assert _ids(settings) == [f"m{m}" for m in range(5)]


def test_two_compactions_of_the_same_files_read_each_row_once(any_store: Settings) -> None:
    """Two ``mloop gc`` at once (a cron job and a user) both list an hour before either has compacted it."""
    settings = any_store
    blobs = open_blob_store(settings.artifact_root)
    keys = [_write(blobs, minute, 1.5 * minute) for minute in range(4)]
    compact_files(blobs, keys)
    compact_files(blobs, keys)
    assert _ids(settings) == [f"m{m}" for m in range(4)]
    _gc(settings)
    assert len(blobs.list(f"{PREFIX}/eta/")) == 1 and _ids(settings) == [f"m{m}" for m in range(4)]


def test_a_listing_that_spans_a_gc_misses_no_row(any_store: Settings) -> None:
    """An object store lists a long folder a page at a time, in key order: a monitor's listing can begin before gc
    stores a compacted file (which sorts with the first file of its hour) and end after gc deleted what it joined.
    The monitor reads the files of the times it wants, not those before: no file it reads went missing."""
    settings = any_store
    blobs = open_blob_store(settings.artifact_root)
    for minute in range(8):
        _write(blobs, minute, 1.5 * minute)
    first_page = blobs.list(f"{PREFIX}/eta/")[:4]
    compact_predictions(settings, now=LATER)  # between the pages
    listed = first_page + [k for k in blobs.list(f"{PREFIX}/eta/") if k > first_page[-1]]
    since, until = int((HOUR + timedelta(minutes=4)).timestamp() * 1000), int(LATER.timestamp() * 1000)
    wanted = [k for k in live_keys(listed) if (_log.written_span(k) or (0, 0))[1] >= since]
    assert sorted(_log.read_rows(blobs, wanted, since, until)["id"]) == [f"m{m}" for m in range(4, 8)]


def test_a_monitor_choosing_files_of_a_stretch_of_a_compacted_hour_drops_the_joined_ones(any_store: Settings) -> None:
    """Covered files are dropped among the files of the times asked for (what a monitor lists), not the day's."""
    settings = any_store
    blobs = open_blob_store(settings.artifact_root)
    keys = [_write(blobs, minute, 1.5 * minute if minute < 4 else minute) for minute in range(8)]
    compact_files(blobs, keys)  # two parts; the joined files are still there
    since = int((HOUR + timedelta(minutes=3)).timestamp() * 1000)
    chosen = _log.files_since(blobs, "eta", since, since + 120_000)
    assert len(chosen) == 2 and all(parse_key(k).compacted for k in chosen)  # type: ignore[union-attr]
    assert sorted(_log.rows_since(blobs, "eta", since, since + 120_000)["id"]) == ["m3", "m4"]


def test_a_compacted_file_of_several_schemas_is_named_by_one_span_in_parts() -> None:
    key = "predictions/eta/2026-11-02/093000000123-1.9f3e2a-compact-095959999000-1a2b3c4d-2of3.parquet"
    found = parse_key(key)
    assert found is not None and found.compacted and (found.first, found.last) == ("093000000123", "095959999000")
    assert (found.id, found.part, found.parts) == ("1a2b3c4d", 2, 3)
    assert _log.written_span(key) == _log.written_span(key.replace("-2of3", ""))


class _HeldStore(LocalBlobStore):
    """A local store whose puts from the thread named ``held`` wait until released: a flush on a slow store."""

    def __init__(self, root: str, held: str) -> None:
        super().__init__(root)
        self.held, self.entered, self.release = held, threading.Event(), threading.Event()

    def put_bytes(self, key: str, data: bytes):  # type: ignore[no-untyped-def]
        if threading.current_thread().name == self.held:
            self.entered.set()
            self.release.wait(60)
        return super().put_bytes(key, data)


def _record(log: PredictionLog, request_id: str) -> None:
    log.record("eta", "1", "primary", request_id, {"km": [1.0]}, [1.0], 0.001, 1)


def _compact_hour_closed(log: PredictionLog, now: datetime) -> None:
    """What the log's next flush does once its hour has closed, and the compaction it starts, finished."""
    log._compact_closed(now, [])
    if log._compacting is not None:
        log._compacting.result(timeout=60)


def test_a_flush_stuck_on_a_slow_store_as_its_hour_closes_keeps_its_rows(settings: Settings) -> None:
    """``flush()`` may run on a caller's thread beside the writer's: a file stamped before the last one stored
    must not fall inside a compacted file it is not in."""
    log = PredictionLog(settings, flush_seconds=3600)
    store = log.blobs = _HeldStore(settings.artifact_root, held="slow-flush")
    try:
        _record(log, "r0")
        log.flush()
        _record(log, "r1")
        slow = threading.Thread(target=log.flush, name="slow-flush")
        slow.start()
        assert store.entered.wait(30)  # r1's file is named; its put waits
        _record(log, "r2")
        log.flush()  # named after r1's, stored before it
        next_hour = datetime.now(UTC) + timedelta(hours=1)
        _compact_hour_closed(log, next_hour)
        store.release.set()
        slow.join(60)
        _compact_hour_closed(log, next_hour)
        assert _ids(settings) == ["r0-0", "r1-0", "r2-0"]
        assert any("-compact-" in k for k in store.list(f"{PREFIX}/eta/"))  # the hour was compacted after all
    finally:
        store.release.set()
        log.close()


def test_two_logs_in_one_process_compact_only_their_own_files(settings: Settings) -> None:
    """Two serving apps in one process (or a batch scoring run beside one) write the same model's log."""
    first, second = PredictionLog(settings, flush_seconds=3600), PredictionLog(settings, flush_seconds=3600)
    try:
        for i, log in enumerate((first, second, first)):
            _record(log, f"r{i}")
            log.flush()
        _compact_hour_closed(first, datetime.now(UTC) + timedelta(hours=1))
        assert _ids(settings) == ["r0-0", "r1-0", "r2-0"]
    finally:
        first.close()
        second.close()
    compact_predictions(settings, now=datetime.now(UTC) + timedelta(hours=4))
    compact_predictions(settings, now=datetime.now(UTC) + timedelta(hours=4))
    assert _ids(settings) == ["r0-0", "r1-0", "r2-0"]


def test_read_predictions_lists_again_when_a_file_went_between_listing_and_reading(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = open_blob_store(settings.artifact_root)
    for minute in range(4):
        _write(blobs, minute, 1.5 * minute)

    class CompactedAfterListing(LocalBlobStore):
        """The store as read_predictions sees it: its first listing is followed at once by gc (twice)."""

        listings = 0

        def list(self, prefix: str = "") -> list[str]:
            found = super().list(prefix)
            CompactedAfterListing.listings += 1
            if CompactedAfterListing.listings == 1:
                _gc(settings)
            return found

    monkeypatch.setattr(predlog, "open_blob_store", lambda root: CompactedAfterListing(root))
    assert _ids(settings) == [f"m{m}" for m in range(4)]
