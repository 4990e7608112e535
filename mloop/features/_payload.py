"""Feature values of the matched rows, fetched by row number from one local Parquet file.

The point-in-time join moves only keys, times and row numbers; the values of the rows it picks
are read afterwards with Arrow, column by column and only from the row groups that hold a picked
row, then taken by row number. That costs one decode of those columns and no join on the
row address (which cost DuckDB a full scan of the value columns plus a hash join).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pyarrow as pa

from mloop.features.sources import _lit

__all__ = ["has_columns", "only_file", "positions", "take_rows"]


def only_file(con: Any, pattern: str) -> str | None:
    """The file when DuckDB's own glob of ``pattern`` finds exactly one (the one ``read_parquet`` reads).

    >>> import duckdb
    >>> only_file(duckdb.connect(), "/nonexistent/*.parquet") is None
    True
    """
    files = con.execute(f"SELECT file FROM glob({_lit(pattern)}) LIMIT 2").fetchall()
    return str(files[0][0]) if len(files) == 1 else None


def positions(rows: np.ndarray, picked: np.ndarray, count: int) -> np.ndarray:
    """An array of ``count`` positions, ``picked[k]`` at ``rows[k]`` and -1 where nothing was picked.

    >>> positions(np.array([2, 0]), np.array([7, 5]), 4).tolist()
    [5, -1, 7, -1]
    """
    out = np.full(count, -1, dtype=np.int64)
    out[rows] = picked
    return out


def has_columns(path: str, names: list[str]) -> bool:
    """Whether the file has every one of ``names`` (the view was checked against the source when applied,
    but the file may have been replaced since: then the caller falls back to DuckDB's by-name reading)."""
    import pyarrow.parquet as pq

    return set(names) <= set(pq.read_schema(path, memory_map=True).names)


def take_rows(path: str, columns: list[str], rows: np.ndarray) -> pa.Table:
    """``columns`` of the file's rows numbered ``rows`` (0-based over the file; -1 gives a null row).

    Only the row groups holding a wanted row are read.

    >>> import tempfile, pyarrow.parquet as pq
    >>> path = tempfile.mkdtemp() + "/rows.parquet"
    >>> pq.write_table(pa.table({"x": [10.0, 11.0, 12.0]}), path, row_group_size=2)
    >>> take_rows(path, ["x"], np.array([2, -1, 0])).column("x").to_pylist()
    [12.0, None, 10.0]
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path, memory_map=True, pre_buffer=False)  # pages decoded in place, not copied first
    meta = parquet.metadata
    sizes = np.array([meta.row_group(g).num_rows for g in range(meta.num_row_groups)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else sizes
    wanted = rows >= 0
    group_of = np.searchsorted(starts, rows[wanted], side="right") - 1
    groups = np.unique(group_of).tolist()
    # a row's place in what is read: its offset in its group plus the rows of the groups read before it
    read_before = np.concatenate([[0], np.cumsum(sizes[groups])[:-1]]) if groups else np.zeros(0, np.int64)
    local = rows.copy()
    local[wanted] = rows[wanted] - starts[group_of] + read_before[np.searchsorted(groups, group_of)]
    index = pa.array(local, mask=~wanted)
    taken = []
    batch = max(2, os.cpu_count() or 1)  # as many columns as cores decode at once; only those live at a time
    for first in range(0, len(columns), batch):
        names = columns[first:first + batch]
        if groups:
            read = parquet.read_row_groups(groups, columns=names, use_threads=len(names) > 1)
            taken += [read.column(name).take(index) for name in names]
        else:
            taken += [pa.chunked_array([], parquet.schema_arrow.field(name).type).take(index) for name in names]
    return pa.Table.from_arrays(taken, names=columns)
