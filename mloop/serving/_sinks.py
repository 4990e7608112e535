"""Where batch scoring writes: a Parquet folder (one atomic file per chunk) or a database table.

Both record which chunks are done (the resume unit) and keep the rows a chunk rejected beside the
output: ``<folder>.rejects``/``<folder>.quarantine`` folders, or ``<table>__rejects``/``<table>__quarantine``
tables written in the chunk's transaction.

>>> import tempfile
>>> sink, where = sink_for(tempfile.mkdtemp() + "/out", None, None, "skip")
>>> sink.side.name.endswith(".rejects"), sink.done()
(True, set())
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.errors import ConflictError, InvalidInputError

__all__ = ["sink_for"]

_STATE = "_batch.json"


class _ParquetSink:
    def __init__(self, folder: str, on_invalid: str = "fail") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state_path = self.folder / _STATE
        # rejected rows go beside the output folder, never inside it (a reader of the folder would mix them in)
        base = str(self.folder).rstrip("/\\")
        self.sides = {kind: Path(f"{base}.{kind}") for kind in ("rejects", "quarantine")}
        self.side = self.sides.get("rejects" if on_invalid == "skip" else on_invalid)

    def state(self) -> dict[str, Any] | None:
        return json.loads(self.state_path.read_text()) if self.state_path.is_file() else None

    def start(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_path)

    def rejected(self) -> int:
        """Rows rejected into the side folder so far, by this run and any interrupted run before it."""
        if self.side is None or not self.side.is_dir():
            return 0
        parts = sorted(self.side.glob("part-*.parquet"))
        if self.side == self.sides["quarantine"]:  # one row per rejected row
            return sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
        return sum(len(set(pq.read_table(part, columns=["row"]).column("row").to_pylist())) for part in parts)

    def done(self) -> set[int]:
        parts = [*self.folder.glob("part-*.parquet"), *self.folder.glob("_empty-*")]
        return {int(p.name.split(".")[0].split("-")[1]) for p in parts}

    def reset(self, state: dict[str, Any]) -> None:
        """Forget a previous run: its chunks, rejected rows and state (nothing else in the folders is touched)."""
        folders = [self.folder, *(side for side in self.sides.values() if side.is_dir())]
        for folder in folders:
            for path in [*folder.glob("part-*.parquet"), *folder.glob(".tmp-part-*.parquet")]:
                path.unlink()
        for path in self.folder.glob("_empty-*"):
            path.unlink()
        self.state_path.unlink(missing_ok=True)

    def write(self, index: int, table: pa.Table, rejected: pa.Table | None = None) -> None:
        if rejected is not None and self.side is not None:  # first: the chunk's part marks it done
            self.side.mkdir(parents=True, exist_ok=True)
            _write_atomic(rejected, self.side, index)
        if table.num_rows == 0:  # every row rejected: an empty marker says the chunk is done
            (self.folder / f"_empty-{index:06d}").touch()
            return
        _write_atomic(table, self.folder, index)


def _write_atomic(table: pa.Table, folder: Path, index: int) -> None:
    final = folder / f"part-{index:06d}.parquet"
    tmp = folder / f".tmp-part-{index:06d}.parquet"
    pq.write_table(table, tmp)
    os.replace(tmp, final)  # a chunk is there whole or not at all


class _TableSink:
    def __init__(self, table: str, db_url: str, on_invalid: str = "fail") -> None:
        import sqlalchemy as sa

        self.sa = sa
        self.table = table
        self.side = f"{table}__{'rejects' if on_invalid == 'skip' else on_invalid}" if on_invalid != "fail" else None
        self.engine = sa.create_engine(db_url)
        self.progress = f"{table}__chunks"
        with self.engine.begin() as conn:
            conn.execute(sa.text(f'CREATE TABLE IF NOT EXISTS "{self.progress}" '
                                 "(chunk INTEGER PRIMARY KEY, rows INTEGER, state TEXT)"))

    def state(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(self.sa.text(f'SELECT state FROM "{self.progress}" WHERE chunk = -1')).first()
        return json.loads(row[0]) if row else None

    def start(self, state: dict[str, Any]) -> None:
        # a table this run creates can be dropped by a restart; one that held rows before cannot be sorted out
        state = {**state, "created_table": not self.sa.inspect(self.engine).has_table(self.table)}
        with self.engine.begin() as conn:
            conn.execute(self.sa.text(f'INSERT INTO "{self.progress}" VALUES (-1, 0, :s)'), {"s": json.dumps(state)})

    def reset(self, state: dict[str, Any]) -> None:
        """Forget a previous run: drop the rows it wrote (the table it created) and its chunk records."""
        if not state.get("created_table"):
            raise ConflictError(f"Table {self.table} held rows before the previous batch run began, so its rows "
                                "cannot be told apart to start over; write to a new table instead.", field="output")
        with self.engine.begin() as conn:
            conn.execute(self.sa.text(f'DROP TABLE IF EXISTS "{self.table}"'))
            for kind in ("rejects", "quarantine"):
                conn.execute(self.sa.text(f'DROP TABLE IF EXISTS "{self.table}__{kind}"'))
            conn.execute(self.sa.text(f'DELETE FROM "{self.progress}"'))

    def rejected(self) -> int:
        """Rows rejected into the side table so far, by this run and any interrupted run before it."""
        if self.side is None or not self.sa.inspect(self.engine).has_table(self.side):
            return 0
        count = "count(*)" if self.side.endswith("__quarantine") else 'count(DISTINCT "row")'
        with self.engine.connect() as conn:
            return int(conn.execute(self.sa.text(f'SELECT {count} FROM "{self.side}"')).scalar() or 0)

    def done(self) -> set[int]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(self.sa.text(f'SELECT chunk FROM "{self.progress}" WHERE chunk >= 0'))}

    def write(self, index: int, table: pa.Table, rejected: pa.Table | None = None) -> None:
        frame = _sql_frame(table)
        with self.engine.begin() as conn:  # rows, rejected rows and the chunk marker commit together
            if len(frame):
                frame.to_sql(self.table, conn, if_exists="append", index=False, chunksize=10_000)
            if rejected is not None and self.side is not None:
                _sql_frame(rejected).to_sql(self.side, conn, if_exists="append", index=False, chunksize=10_000)
            conn.execute(self.sa.text(f'INSERT INTO "{self.progress}" VALUES (:c, :r, NULL)'),
                         {"c": index, "r": len(frame)})


def _sql_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    for name in frame.columns:
        if frame[name].dtype == object and len(frame) and isinstance(frame[name].iloc[0], list | np.ndarray):
            frame[name] = frame[name].map(lambda v: json.dumps(np.asarray(v).tolist()))
    return frame


def sink_for(output: str, fmt: str | None, db_url: str | None, on_invalid: str = "fail") -> tuple[Any, str]:
    """The sink for ``output`` (a Parquet folder, or ``table:NAME`` in ``db_url``) and how to name it."""
    if fmt == "table" or output.startswith("table:"):
        name = output.removeprefix("table:")
        if not name.replace("_", "").isalnum():
            raise InvalidInputError(field="output", value=name, expected="a table name of letters, digits and _")
        if not db_url:
            raise InvalidInputError(field="db_url", value=db_url, expected="a database URL for the output table")
        return _TableSink(name, db_url, on_invalid), f"table {name}"
    if fmt not in (None, "parquet"):
        raise InvalidInputError(field="output_format", value=fmt, expected="parquet or table")
    return _ParquetSink(output, on_invalid), output
