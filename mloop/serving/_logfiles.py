"""The prediction log's files: how they are named, and how a closed hour's files are joined into one.

A file is named by when it was written and by whom, ``<day>/<HHMMSSffffff>-<writer>-<id>.parquet``, and every
row in it was predicted at or before that time: a reader wanting the rows after some time reads only the files
written since. The writer is the process id and a random token (drawn by each serving log, so two logs in one
process are two writers): replicas in containers all run as process 1 and may share one store.

``mloop serve`` writes its log every second, so a busy day is 86,400 small files, and a reader pays about as much
to open a file of 100 rows as one of 100,000: opening them was most of what summarizing a day cost. So once an
hour has closed, the files one writer wrote in it are joined into one,
``<day>/<first>-<writer>-compact-<last>-<id>.parquet``: ``first`` and ``last`` are the written times of the first
and last file it joins, which keeps the rule above for readers that choose files by a span of written times. A
compacted file covers the files of its writer written in ``[first, last]`` (the name says it all; no file needs
opening to know), and readers drop a covered file still present (``live_keys``): the joined files are deleted
well after the compacted one is stored, so a compaction stopped halfway loses and doubles nothing, a reader that
listed the folder as it was compacted still finds every file it listed but did not see covered, and a reader
that finds a file gone lists again (the compacted file is there by then).

A file holds one schema, and the serving log infers its input types every second (a second of nulls, of whole
numbers), so an hour's files of several schemas, interleaved, are joined into one file per schema, the parts of
one compaction: each is named by the span of them all and says which part of how many it is
(``...-<id>-<i>of<n>.parquet``), and covers nothing until all of its parts are stored. A file that cannot be read
is never inside a span: the files on either side of it are joined apart, and it stays for readers as it is.
A serving log compacts the files it knows it stored; a file of another log in its process is another writer's.

The serving log compacts its own files when an hour closes (a file of that hour can no longer come from it);
``mloop gc`` joins what is left (a process that ended mid-hour) for hours closed at least ``GC_AFTER_HOURS`` ago.

>>> parse_key("predictions/fare/2026-11-02/093000000123-1.9f3e2a-compact-095959999000-1a2b3c4d.parquet")
LogFile(folder='predictions/fare/2026-11-02', first='093000000123', last='095959999000', writer='1.9f3e2a', \
compacted=True, id='1a2b3c4d', part=1, parts=1)
"""

from __future__ import annotations

import io
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import pyarrow as pa
import pyarrow.parquet as pq

from mloop.errors import NotFoundError
from mloop.store.blob.base import BlobStore

__all__ = ["FILE_GONE", "GC_AFTER_HOURS", "LogFile", "compact_files", "compact_log", "live_keys", "new_key",
           "new_token", "parse_key", "stamp_ms"]

GC_AFTER_HOURS = 2
# what reading a listed file raises when it went since the listing (a store's NotFoundError, a scan's OS error):
# a reader then lists again, and finds the compacted file that holds its rows
FILE_GONE = (NotFoundError, FileNotFoundError)
_PLAIN = re.compile(r"(\d{12})-([0-9a-z.]+)-[0-9a-f]{8}\.parquet")
_COMPACTED = re.compile(r"(\d{12})-([0-9a-z.]+)-compact-(\d{12})-([0-9a-f]{8})(?:-(\d{1,4})of(\d{1,4}))?\.parquet")
_TOKEN = uuid.uuid4().hex[:6]  # a forked child shares it, and its process id tells it apart
# a compacted file's rows in row groups of this many: a reader filtering on time skips the groups outside its span
_ROW_GROUP = 128 * 1024


@dataclass(frozen=True)
class LogFile:
    """What a log file's key says: its folder, the written times it spans (``HHMMSSffffff``), who wrote it; for a
    compacted file, the id of its compaction and which part of it it is (of how many)."""

    folder: str
    first: str
    last: str
    writer: str
    compacted: bool
    id: str = ""
    part: int = 1
    parts: int = 1


def new_token() -> str:
    """A writer's token: a log that compacts its files draws its own, so that no other log's file in its process
    ever looks like one of its own."""
    return uuid.uuid4().hex[:6]


def new_key(folder: str, now: datetime | None = None, token: str = _TOKEN) -> str:
    """The key of a log file written now into ``folder`` (``predictions/<model>``) by the writer ``token`` (the
    process's, unless the log drew its own); one clock reading names both the day folder and the file, so a file
    written at midnight cannot land in the day before."""
    now = now or datetime.now(UTC)
    return f"{folder}/{now:%Y-%m-%d}/{now:%H%M%S%f}-{os.getpid()}.{token}-{uuid.uuid4().hex[:8]}.parquet"


def stamp_ms(stamp: str) -> int:
    """Milliseconds into its day of a name's ``HHMMSSffffff`` stamp.

    >>> stamp_ms("093000123456")
    34200123
    """
    return ((int(stamp[:2]) * 60 + int(stamp[2:4])) * 60 + int(stamp[4:6])) * 1000 + int(stamp[6:]) // 1000


def parse_key(key: str) -> LogFile | None:
    """The parts of a log file's key; ``None`` for a key the log did not name."""
    folder, _, name = key.rpartition("/")
    plain = _PLAIN.fullmatch(name)
    if plain is not None:
        return LogFile(folder, plain.group(1), plain.group(1), plain.group(2), False)
    compacted = _COMPACTED.fullmatch(name)
    if compacted is not None:
        first, writer, last, compaction, part, parts = compacted.groups()
        return LogFile(folder, first, last, writer, True, compaction, int(part or 1), int(parts or 1))
    return None


def live_keys(keys: list[str]) -> list[str]:
    """``keys`` without the files a compacted file among them covers (same folder and writer, written within
    its span): their rows are in the compacted file. A compaction counts once all its parts are among ``keys``
    (until then its parts are left out and it covers nothing), and once per span: a second compaction of the same
    files (two ``mloop gc`` at once) is left out too."""
    if not any("-compact-" in key for key in keys):  # the common case, without parsing a day of names
        return keys
    parsed = [(key, parse_key(key)) for key in keys]
    parts: dict[tuple[str, str, str, str, str, int], set[int]] = {}  # a compaction -> its parts listed
    for _, file in parsed:
        if file is not None and file.compacted:
            parts.setdefault((file.folder, file.writer, file.first, file.last, file.id, file.parts),
                             set()).add(file.part)
    kept: dict[tuple[str, str, str, str], str] = {}  # (folder, writer, first, last) -> the compaction read
    for (folder, writer, first, last, compaction, count), listed in parts.items():
        if listed >= set(range(1, count + 1)):
            span = (folder, writer, first, last)
            kept[span] = min(kept.get(span, compaction), compaction)
    spans: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for folder, writer, first, last in kept:
        spans.setdefault((folder, writer), []).append((first, last))

    def live(file: LogFile | None) -> bool:
        if file is None:
            return True  # not named by the log: never covered
        if file.compacted:
            return kept.get((file.folder, file.writer, file.first, file.last)) == file.id
        return not any(first <= file.first <= last for first, last in spans.get((file.folder, file.writer), ()))

    return [key for key, file in parsed if live(file)]


def compact_files(blobs: BlobStore, keys: list[str]) -> list[str]:
    """Join ``keys`` (plain log files of one day folder and one writer) into one compacted file per schema (the
    parts of one compaction), stored before anything is deleted; returns the keys of the files joined (a file gone
    meanwhile is skipped; the files on either side of an unreadable one are joined apart, so that it stays outside
    every span). The caller deletes them, later: a reader may have listed them and not the compacted file."""
    keys = sorted(keys)
    tables, unreadable = _read_by_schema(blobs, keys)
    if unreadable:
        joined = []
        for stretch in _stretches(keys, unreadable):
            if len(stretch) > 1:
                joined.extend(compact_files(blobs, stretch))
        return joined
    read = sorted(key for group_keys, _ in tables for key in group_keys)
    if len(read) < 2:
        return []
    first, last = parse_key(read[0]), parse_key(read[-1])
    assert first is not None and last is not None  # the callers pass keys the log named
    stem = f"{first.folder}/{first.first}-{first.writer}-compact-{last.last}-{uuid.uuid4().hex[:8]}"
    for part, (_, table) in enumerate(tables, 1):
        sink = pa.BufferOutputStream()  # an Arrow buffer: the encoder never calls back into Python
        pq.write_table(table, sink, compression="zstd", row_group_size=_ROW_GROUP)
        suffix = f"-{part}of{len(tables)}" if len(tables) > 1 else ""
        blobs.put_bytes(f"{stem}{suffix}.parquet", sink.getvalue().to_pybytes())
    return read


def _stretches(keys: list[str], unreadable: set[str]) -> list[list[str]]:
    """``keys`` (sorted) cut at the unreadable ones, which are left out."""
    stretches: list[list[str]] = [[]]
    for key in keys:
        if key in unreadable:
            stretches.append([])
        else:
            stretches[-1].append(key)
    return stretches


def _read_by_schema(blobs: BlobStore, keys: list[str]) -> tuple[list[tuple[list[str], pa.Table]], set[str]]:
    """The rows of ``keys`` joined per schema, in the order of ``keys``: (the keys read, their rows); and the keys
    that could not be read (a file gone meanwhile is neither)."""
    local_path = getattr(blobs, "local_path", None)
    groups: list[tuple[pa.Schema, list[str], list[str]]] = []  # schema, keys, local paths
    tables: dict[str, pa.Table] = {}  # read whole already (not a local store)
    unreadable: set[str] = set()
    for key in keys:
        try:
            if local_path is not None:
                path = str(local_path(key))  # confined to the store
                schema = pq.read_schema(path)
            else:
                path, table = key, pq.read_table(io.BytesIO(blobs.get_bytes(key)))
                tables[key], schema = table, table.schema
        except FILE_GONE:
            continue  # purged meanwhile
        except (pa.ArrowInvalid, OSError):
            unreadable.add(key)  # not a Parquet file the log wrote, or not now: readers decide what to do with it
            continue
        same = next((group for group in groups if group[0].equals(schema)), None)
        if same is None:
            groups.append((schema, [key], [path]))
        else:
            same[1].append(key)
            same[2].append(path)
    if local_path is None:
        return [(group_keys, pa.concat_tables([tables[k] for k in group_keys])) for _, group_keys, _ in groups], \
            unreadable
    found = []
    for schema, group_keys, paths in groups:
        group = _scan(schema, group_keys, paths, unreadable)
        if group is not None:
            found.append(group)
    return found, unreadable


def _scan(schema: pa.Schema, keys: list[str], paths: list[str], unreadable: set[str]
          ) -> tuple[list[str], pa.Table] | None:
    """Local files of one schema read by one DuckDB scan (a file costs it a third of what opening it from Python
    does: an hour of one-second files is 3,600) and cast back to that schema; file by file when a type does not
    cast back exactly or a file went missing meanwhile (a file that cannot be read is added to ``unreadable``)."""
    import duckdb

    try:
        with duckdb.connect(config={"threads": 1}) as con:  # one thread keeps the rows in the files' order
            found = con.sql("SELECT * FROM read_parquet($paths)", params={"paths": paths}).to_arrow_table()
        return keys, found.combine_chunks().cast(schema)
    except (duckdb.Error, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        pass
    read = []
    for key, path in zip(keys, paths, strict=True):
        try:
            read.append((key, pq.read_table(path)))
        except FileNotFoundError:
            continue  # purged meanwhile
        except (pa.ArrowInvalid, OSError):
            unreadable.add(key)
    if not read:
        return None
    return [key for key, _ in read], pa.concat_tables([table for _, table in read])


def compact_log(blobs: BlobStore, prefix: str, *, now: datetime | None = None) -> dict[str, int]:
    """Compact every model's log under ``prefix`` (``predictions``) for hours closed ``GC_AFTER_HOURS`` ago or
    more, and delete the files of those hours no reader needs (those a compacted file covers, a second compaction
    of the same files, the parts of one that never finished); returns ``{"compacted": files joined, "deleted":
    files deleted}``. The files joined now are deleted by the next run: a reader listing the folder now may have
    seen them and not the compacted file. ``mloop gc`` calls it; the serving log compacts its own hours as they
    close.
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(hours=GC_AFTER_HOURS)
    keys = [k for k in blobs.list(f"{prefix}/") if k.endswith(".parquet")]
    live = set(live_keys(keys))
    unneeded = []
    groups: dict[tuple[str, str, str], list[str]] = {}  # (day folder, hour, writer) -> its plain files
    for key in keys:
        file = parse_key(key)
        if file is None or "/_" in file.folder or _hour_end(file.folder, file.first) > cutoff:
            continue  # feedback and error logs are read whole; the serving log compacts the last hours
        if key not in live:
            unneeded.append(key)
        elif not file.compacted:
            groups.setdefault((file.folder, file.first[:2], file.writer), []).append(key)
    deleted = sum(blobs.delete(key) for key in unneeded)
    compacted = sum(len(compact_files(blobs, group)) for group in groups.values() if len(group) > 1)
    return {"compacted": compacted, "deleted": deleted}


def _hour_end(folder: str, stamp: str) -> datetime:
    """When the hour of a file written at ``stamp`` in the day folder ``folder`` ends (far future for a folder not
    named like a day, so it is never compacted)."""
    day = _day_of(folder)
    return day + timedelta(hours=int(stamp[:2]) + 1) if day is not None else datetime.max.replace(tzinfo=UTC)


@lru_cache(maxsize=256)  # once per day folder, not per file: gc walks every file of every day kept
def _day_of(folder: str) -> datetime | None:
    try:
        return datetime.strptime(folder.rpartition("/")[2], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
