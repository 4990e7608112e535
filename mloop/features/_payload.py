"""Feature values of the matched rows, fetched by row number from one local Parquet file.

The point-in-time join moves only keys, times and row numbers; the values of the rows it picks
are read afterwards with Arrow, column by column and only from the row groups that hold a picked
row, then taken by row number. That costs one decode of those columns and no join on the
row address (which cost DuckDB a full scan of the value columns plus a hash join).
"""

from __future__ import annotations

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


_BATCH_ROWS = 1 << 16  # rows decoded at a time: a few MB per batch, reused by the next, never a whole column


def take_rows(path: str, columns: list[str], rows: np.ndarray) -> pa.Table:
    """``columns`` of the file's rows numbered ``rows`` (0-based over the file; -1 gives a null row).

    Only the row groups holding a wanted row are read, a batch of rows at a time: each batch gives up
    its wanted rows and its memory to the next, so a column is never decoded whole. In a fresh process
    every new page of memory costs a fault (and zeroing), which is most of what a first call pays.

    >>> import tempfile, pyarrow.parquet as pq
    >>> path = tempfile.mkdtemp() + "/rows.parquet"
    >>> pq.write_table(pa.table({"x": [10.0, 11.0, 12.0]}), path, row_group_size=2)
    >>> take_rows(path, ["x"], np.array([2, -1, 0])).column("x").to_pylist()
    [12.0, None, 10.0]
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path, memory_map=True, pre_buffer=False)  # pages decoded in place, not copied first
    by_row, groups, read_at = _read_order(parquet.metadata, rows)
    names = list(dict.fromkeys(columns))
    pieces: dict[str, list[pa.Array]] = {name: [] for name in names}
    first = 0
    batches = parquet.iter_batches(batch_size=_BATCH_ROWS, row_groups=groups, columns=names,
                                   use_threads=len(names) > 1) if groups else ()
    for batch in batches:
        low, high = np.searchsorted(read_at, [first, first + batch.num_rows])
        if high > low:
            index = pa.array(read_at[low:high] - first)
            for name in names:
                pieces[name].append(batch.column(name).take(index))
        first += batch.num_rows
    # the k-th row taken (in file order) belongs at output position by_row[k]
    place = np.full(len(rows), -1, dtype=np.int64)
    place[by_row] = np.arange(len(by_row), dtype=np.int64)
    back = pa.array(place, mask=place < 0)
    schema = parquet.schema_arrow
    taken = {name: pa.chunked_array(pieces[name], schema.field(name).type).take(back) for name in names}
    return pa.Table.from_arrays([taken[name] for name in columns], names=columns)


def _read_order(meta: Any, rows: np.ndarray) -> tuple[np.ndarray, list[int], np.ndarray]:
    """(the output positions with a wanted row, ordered by file row; the row groups holding them; each
    one's place among the rows of those groups, ascending), for ``take_rows``."""
    sizes = np.array([meta.row_group(g).num_rows for g in range(meta.num_row_groups)], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else sizes
    wanted = np.flatnonzero(rows >= 0)
    by_row = wanted[np.argsort(rows[wanted], kind="stable")]
    file_rows = rows[by_row]
    group_of = np.searchsorted(starts, file_rows, side="right") - 1
    groups = np.unique(group_of)
    # a row's place in what is read: its offset in its group plus the rows of the groups read before it
    read_before = np.concatenate([[0], np.cumsum(sizes[groups])[:-1]]) if len(groups) else np.zeros(0, np.int64)
    read_at = file_rows - starts[group_of] + read_before[np.searchsorted(groups, group_of)]
    return by_row, groups.tolist(), read_at
