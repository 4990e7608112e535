"""The prediction log as the monitor reads it: files by the time they were written, rows as flat columns.

A log file's key is ``predictions/<model>/<day>/<HHMMSSffffff>-<pid>-<id>.parquet``: its name is the time it was
written, and every row in it was predicted at or before that time. So the rows of the windows after a watermark
are all in the files written after it, and a monitor reads only those (``files_since``), never the whole log.
A closed hour's files are joined into one that spans their written times (``mloop/serving/_logfiles.py``): a
reader chooses files whose span meets the times it wants, and drops the files a compacted one covers.
"""

from __future__ import annotations

import io
import os
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mloop.serving._logfiles import FILE_GONE, live_keys, parse_key, stamp_ms
from mloop.serving.predlog import ERRORS, FEEDBACK, PREFIX
from mloop.store.blob.base import BlobStore

_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})/(\d{2})(\d{2})(\d{2})(\d{6})-")
_DAY_MS = 86_400_000
_BASE = ("id", "time", "version", "role", "latency_ms", "output", "proba")
_UNREAD = ("model",)  # a log file's column the monitor has no use for: its folder names the model already


def written_ms(key: str) -> int | None:
    """When a log file was written (epoch ms), read from its key; ``None`` for a file not named by the log."""
    found = _NAME.search(key)
    if found is None:
        return None
    try:  # the fields by hand: strptime costs more than the rest of listing a day of one-second files
        stamp = datetime(*(int(part) for part in found.groups()), tzinfo=UTC)  # type: ignore[misc]
    except ValueError:
        return None
    return int(stamp.timestamp() * 1000)


def written_span(key: str) -> tuple[int, int] | None:
    """The first and last written times (epoch ms) of the files a log file holds the rows of: the one time a
    file was written, or the span of the files a compacted file joined; ``None`` for a file not named by the log.
    """
    first = written_ms(key)
    if first is None:
        return None
    if "-compact-" not in key:  # a plain file: no second parse for each of a day's 86,400
        return first, first
    file = parse_key(key)
    if file is None or not file.compacted:
        return first, first
    return first, first - first % _DAY_MS + stamp_ms(file.last)


def spans(keys: list[str]) -> list[tuple[int, int, str]]:
    """``(first, last, key)`` of each log file (``written_span``), in the order of ``keys``."""
    return [(*(written_span(key) or (0, 0)), key) for key in keys]


def files_since(blobs: BlobStore, model: str, since_ms: int, until_ms: int | None = None) -> list[str]:
    """The model's log files with rows written at or after ``since_ms`` (and before ``until_ms``), oldest first;
    files a compacted one covers are left out (its rows are in it)."""
    since_day = datetime.fromtimestamp(since_ms / 1000, UTC).strftime("%Y-%m-%d")
    found = []
    for key in _listed(blobs, f"{PREFIX}/{model}", since_day):
        day = key.split("/")[-2] if key.count("/") >= 3 else ""
        if not key.endswith(".parquet") or day < since_day:
            continue
        span = written_span(key)
        if span is not None and span[1] >= since_ms and (until_ms is None or span[0] < until_ms):
            found.append((span[0], key))
    # covered files dropped from the files in range only: a compacted file that covers one of them is in range
    # too, and a day of one-second files costs more to parse than to choose from
    live = set(live_keys([key for _, key in found]))
    return [key for _, key in sorted(found) if key in live]


def _listed(blobs: BlobStore, folder: str, since_day: str) -> list[str]:
    """The keys under ``folder``; on a local store only those of its day folders from ``since_day`` on (a log
    kept for weeks holds millions of files, and a monitor wants the last few hours of them)."""
    local_path = getattr(blobs, "local_path", None)
    if local_path is None:
        return blobs.list(folder + "/")
    try:
        with os.scandir(local_path(folder)) as entries:
            days = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
    keys = []
    for day in days:
        if len(day) == 10 and day < since_day:
            continue  # a day folder before the one asked for: nothing in it was written since
        keys.extend(_day_keys(blobs, f"{folder}/{day}"))
    return keys


def _day_keys(blobs: Any, folder: str) -> list[str]:
    """The keys of a local day folder as ``blobs.list`` gives them, without a stat per file when it holds only
    plain files (links and subfolders: ``blobs.list`` decides which count)."""
    with os.scandir(blobs.local_path(folder)) as entries:
        found = [(e.name, e.is_file(follow_symlinks=False)) for e in entries]
    if not all(plain for _, plain in found):
        return blobs.list(folder + "/")
    return sorted(f"{folder}/{name}" for name, _ in found if not name.startswith(".tmp-"))


def feedback_files(blobs: BlobStore, after_key: str) -> list[str]:
    """The feedback-label files after ``after_key`` in write order ("" for all)."""
    keys = [k for k in blobs.list(f"{PREFIX}/{FEEDBACK}/") if k.endswith(".parquet")]
    ordered = sorted(keys, key=lambda k: (written_ms(k) or 0, k))
    if not after_key:
        return ordered
    mark = (written_ms(after_key) or 0, after_key)
    return [k for k in ordered if (written_ms(k) or 0, k) > mark]


def read_rows(blobs: BlobStore, keys: list[str], start_ms: int, end_ms: int) -> pd.DataFrame:
    """The rows of ``keys`` predicted in ``[start_ms, end_ms)``: the log's columns (time as epoch ms) and one
    column per model input.

    The files of one schema are joined into one Arrow table before anything becomes pandas: a day of one-second
    files is tens of thousands. On a local store they are scanned by DuckDB, one query per schema (a file costs
    it a fraction of what opening it from Python does); elsewhere they are read on threads.
    """
    paths = _local_paths(blobs, keys)
    tables = _scan(paths, start_ms, end_ms) if paths is not None else _read_each(blobs, keys, start_ms, end_ms)
    if not tables:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in _BASE})
    frames = [_flat(table) for table in tables]
    frame = pd.concat(frames, ignore_index=True, copy=False) if len(frames) > 1 else frames[0]
    frame["time"] = frame["time"].astype("int64")
    return frame


def rows_since(blobs: BlobStore, model: str, since_ms: int, until_ms: int) -> pd.DataFrame:
    """The model's rows predicted in ``[since_ms, until_ms)`` (``read_rows`` of the files that can hold them),
    listed once more when a file was compacted away between listing and reading."""
    try:
        return read_rows(blobs, files_since(blobs, model, since_ms), since_ms, until_ms)
    except FILE_GONE:
        return read_rows(blobs, files_since(blobs, model, since_ms), since_ms, until_ms)


def _read_each(blobs: BlobStore, keys: list[str], start_ms: int, end_ms: int) -> list[pa.Table]:
    """The rows in ``[start_ms, end_ms)`` of each file read through the store, one table per schema."""
    from concurrent.futures import ThreadPoolExecutor

    def read(key: str) -> pa.Table:
        return _in_range(pq.read_table(io.BytesIO(blobs.get_bytes(key))), start_ms, end_ms)

    by_schema: dict[pa.Schema, list[pa.Table]] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for table in pool.map(read, keys):
            if table.num_rows:
                by_schema.setdefault(table.schema, []).append(table)
    return [pa.concat_tables(tables) for tables in by_schema.values()]


def _in_range(table: pa.Table, start_ms: int, end_ms: int) -> pa.Table:
    times = pc.cast(table.column("time"), pa.int64())
    return table.filter(pc.and_(pc.greater_equal(times, start_ms), pc.less(times, end_ms)))


def _local_paths(blobs: BlobStore, keys: list[str]) -> list[str] | None:
    """The files of ``keys`` when the store is a local folder (each confined to it), else ``None``."""
    local_path = getattr(blobs, "local_path", None)
    if local_path is None or not keys:
        return None
    regular: dict[str, tuple[str, set[str]]] = {}  # folder key -> its real path, its plain (not linked) files
    paths = []
    for key in keys:
        folder, _, name = key.rpartition("/")
        if folder not in regular:
            root = str(local_path(folder))  # confined once per folder: a day holds tens of thousands of files
            with os.scandir(root) as entries:
                regular[folder] = (root, {e.name for e in entries if e.is_file(follow_symlinks=False)})
        root, names = regular[folder]
        # a linked file is confined on its own (local_path refuses one that leads out of the store)
        paths.append(os.path.join(root, name) if name in names else str(local_path(key)))
    return paths


def _scan(paths: list[str], start_ms: int, end_ms: int) -> list[pa.Table]:
    """The rows in ``[start_ms, end_ms)`` of local Parquet files: one DuckDB scan per schema, each cast back to
    the types Arrow reads the files as (so the rows are what ``pq.read_table`` gives, only sooner)."""
    import duckdb

    # one after the other: a small file's footer is read sooner than a thread pool hands it over (threads cost a
    # batch of 500 files twice the CPU)
    schemas = [pq.read_schema(path) for path in paths]
    groups: list[tuple[pa.Schema, list[str]]] = []
    for path, schema in zip(paths, schemas, strict=True):
        # compared, not hashed: hashing a schema costs more than reading a small file's footer
        same = next((group for known, group in groups if known.equals(schema)), None)
        if same is None:
            groups.append((schema, [path]))
        else:
            same.append(path)
    tables = []
    # one thread: the scan runs beside the summarizing of the batch before it, and DuckDB's second thread only
    # takes the core that summarizing needs
    with duckdb.connect(config={"threads": 1}) as con:
        for schema, group in groups:
            table = _scan_group(con, schema, group, start_ms, end_ms)
            if table.num_rows:
                tables.append(table)
    return tables


def _scan_group(con: Any, schema: pa.Schema, paths: list[str], start_ms: int, end_ms: int) -> pa.Table:
    """The rows in range of files that share ``schema``; the files read one by one when DuckDB's types do not
    cast back to the schema exactly (a column of nulls, say)."""
    import duckdb

    if "time" not in schema.names or not pa.types.is_timestamp(schema.field("time").type):
        return _read_paths(paths, start_ms, end_ms)
    schema = pa.schema([field for field in schema if field.name not in _UNREAD])
    names = ", ".join('"' + n.replace('"', '""') + '"' for n in schema.names)
    query = (f"SELECT {names} FROM read_parquet($paths) "
             "WHERE epoch_ms(\"time\") >= $start AND epoch_ms(\"time\") < $end")
    try:
        found = con.sql(query, params={"paths": paths, "start": start_ms, "end": end_ms}).to_arrow_table()
        # DuckDB hands over a batch per file or so: thousands of tiny chunks slow every step after, so one each
        found = found.combine_chunks()
        columns = [column if column.type == field.type else column.cast(field.type)
                   for column, field in zip(found.columns, schema, strict=True)]
        return pa.table(columns, schema=pa.schema([field.remove_metadata() for field in schema]))
    except (duckdb.Error, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return _read_paths(paths, start_ms, end_ms)


def _read_paths(paths: list[str], start_ms: int, end_ms: int) -> pa.Table:
    return pa.concat_tables([_in_range(pq.read_table(p), start_ms, end_ms) for p in paths])


def _flat(table: pa.Table) -> pd.DataFrame:
    """One log file's table as a frame whose inputs are columns of their own."""
    base = {name: table.column(name) for name in _BASE if name in table.column_names}
    base["time"] = pc.cast(table.column("time"), pa.int64())
    frame = pa.table(base).to_pandas()
    if "proba" not in frame:
        frame["proba"] = None
    inputs = table.column("inputs")
    if pa.types.is_struct(inputs.type):
        for i, field in enumerate(inputs.type):
            if field.name in _BASE:
                continue  # an input named like a log column cannot shadow it
            values = pc.struct_field(inputs, [i])
            frame[field.name] = values.to_pandas()
    elif len(inputs):  # written with inputs as JSON text
        parsed = pd.DataFrame([orjson.loads(v) if v else {} for v in inputs.to_pylist()])
        for name in parsed.columns:
            if name not in _BASE:
                frame[name] = parsed[name].to_numpy()
    return frame


def read_labels(blobs: BlobStore, keys: list[str]) -> pd.DataFrame:
    """The labels of ``keys``, the latest per prediction id: columns ``id`` and ``label`` (text)."""
    if not keys:
        return pd.DataFrame({"id": pd.Series(dtype=object), "label": pd.Series(dtype=object)})
    frames = [pq.read_table(io.BytesIO(blobs.get_bytes(k))).to_pandas() for k in keys]
    labels = pd.concat(frames, ignore_index=True).sort_values("time", kind="stable")
    return labels.drop_duplicates("id", keep="last")[["id", "label"]]


def decode(texts: pd.Series) -> pd.Series:
    """The log's JSON-text outputs or labels as values: numbers as float64 when every value is one, else text."""
    numbers = parsed_numbers(texts)
    if numbers is not None:
        return numbers
    values = texts.astype(object)
    present = values.notna()
    as_float = pd.to_numeric(values.where(present), errors="coerce")
    if bool((as_float.notna() == present).all()):
        return as_float.astype("float64")
    text = values.where(present, "").astype(str)
    out = values.copy()
    plain = present & text.str.startswith('"') & ~text.str.contains("\\", regex=False)
    out[plain] = text[plain].str.slice(1, -1)  # a JSON string without escapes: its text between the quotes
    escaped = present & text.str.startswith('"') & ~plain
    out[escaped] = [orjson.loads(v) for v in text[escaped]]
    return out.where(present, np.nan)


def parsed_numbers(texts: pd.Series) -> pd.Series | None:
    """Arrow-backed texts that are all numbers (or missing) as float64, parsed by Arrow; None for any other.

    Arrow parses a number's text to the same float as pandas, many times sooner; what it refuses (spaces around
    a number, say) or reads as NaN is left to ``decode``'s pandas path.
    """
    if not isinstance(texts.dtype, pd.StringDtype) or texts.dtype.storage != "pyarrow":
        return None
    values = texts.array.__arrow_array__()  # zero-copy: the ChunkedArray pandas holds
    try:
        parsed = pc.cast(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    numbers = parsed.to_numpy(zero_copy_only=False)
    if int(np.isnan(numbers).sum()) != values.null_count:  # a text "nan": not a number to decode
        return None
    return pd.Series(numbers, index=texts.index, dtype="float64")


def ids_and_times(blobs: BlobStore, key: str) -> pd.DataFrame:
    """The ``id`` and ``time`` (epoch ms) of one log file's rows: what finding the window of a label needs."""
    table = pq.read_table(io.BytesIO(blobs.get_bytes(key)), columns=["id", "time"])
    return pd.DataFrame({"id": table.column("id").to_pandas(),
                         "time": pc.cast(table.column("time"), pa.int64()).to_pandas()})


def error_files(blobs: BlobStore, since_ms: int) -> list[tuple[int, str]]:
    """(when written, key) of the error-log files written at or after ``since_ms``, oldest first."""
    since_day = datetime.fromtimestamp(since_ms / 1000, UTC).strftime("%Y-%m-%d")
    found = []
    for key in blobs.list(f"{PREFIX}/{ERRORS}/"):
        at = written_ms(key)
        if key.endswith(".parquet") and key.split("/")[-2] >= since_day and at is not None and at >= since_ms:
            found.append((at, key))
    return sorted(found)


def read_errors(blobs: BlobStore, keys: list[str], model: str, start_ms: int, end_ms: int) -> pd.DataFrame:
    """The requests of ``model`` answered with an error in ``[start_ms, end_ms)``: time (ms), version, role,
    status."""
    frames = []
    for key in keys:
        table = pq.read_table(io.BytesIO(blobs.get_bytes(key)), columns=["time", "model", "version", "role",
                                                                          "status"])
        times = pc.cast(table.column("time"), pa.int64())
        keep = pc.and_(pc.equal(table.column("model"), model),
                       pc.and_(pc.greater_equal(times, start_ms), pc.less(times, end_ms)))
        kept = table.filter(keep)
        if kept.num_rows:
            frames.append(pd.DataFrame({"time": pc.cast(kept.column("time"), pa.int64()).to_numpy(),
                                        "version": kept.column("version").to_pandas(),
                                        "role": kept.column("role").to_pandas(),
                                        "status": kept.column("status").to_numpy()}))
    if not frames:
        return pd.DataFrame({"time": pd.Series(dtype="int64"), "version": pd.Series(dtype=object),
                             "role": pd.Series(dtype=object), "status": pd.Series(dtype="int32")})
    return pd.concat(frames, ignore_index=True)
