"""Batch scoring: a model over Parquet, CSV or a SQL query, chunk by chunk, into Parquet files or a table.

Memory stays bounded by one chunk (Arrow streams the input). Each chunk is written
atomically with the prediction, the model version and the scoring time beside the
input columns; a ``_batch.json`` in the output (or a ``<table>__chunks`` table) records
which chunks are done and which concrete model version scored them, so running the same
command after a crash scores only the missing chunks, with the same version.

>>> import tempfile, pandas as pd
>>> from pathlib import Path
>>> from sklearn.linear_model import LinearRegression
>>> from mloop.registry import save_model
>>> tmp = Path(tempfile.mkdtemp())
>>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
>>> _ = save_model(LinearRegression().fit(X, [0.0, 2.0, 4.0, 6.0]), tmp / "m", input_example=X)
>>> X.to_parquet(tmp / "in.parquet")
>>> result = batch_predict(str(tmp / "m"), str(tmp / "in.parquet"), str(tmp / "out"), chunk_rows=3)
>>> result.rows, result.chunks_scored
(4, 2)
>>> pd.read_parquet(tmp / "out")["prediction"].round(6).tolist()
[0.0, 2.0, 4.0, 6.0]
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mloop._util.progress import track
from mloop.errors import ConflictError, InvalidInputError
from mloop.serving._rejects import ON_INVALID, invalid_rows, quarantine_table, rejects_table, rows_error
from mloop.serving._sinks import sink_for

__all__ = ["BatchResult", "batch_predict"]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch run did: rows and chunks scored now, chunks skipped as already done, and where."""

    rows: int
    chunks_scored: int
    chunks_skipped: int
    seconds: float
    model_uri: str
    model_version: str
    output: str
    rows_rejected: int = 0  # invalid rows skipped or quarantined in this output (by this run or one it resumed)
    rejects: str | None = None  # where they went (with the reason per row)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------------- input
def _input_format(source: str, fmt: str | None) -> str:
    if fmt:
        if fmt not in ("parquet", "csv", "sql"):
            raise InvalidInputError(field="input_format", value=fmt, expected="parquet, csv or sql")
        return fmt
    if source.lstrip().lower().startswith(("select ", "with ")):
        return "sql"
    lower = source.lower()
    if lower.endswith(".csv") or lower.endswith(".csv.gz"):
        return "csv"
    if lower.endswith(".parquet") or Path(source).is_dir():
        return "parquet"
    raise InvalidInputError(field="input", value=source,
                            expected="a .parquet file or folder, a .csv file, or a SQL query (SELECT ...)")


def _parquet_files(source: str) -> list[Path]:
    path = Path(source)
    return [path] if path.is_file() else sorted(p for p in path.rglob("*.parquet") if not p.name.startswith("."))


def _input_files(source: str, fmt: str) -> list[list[Any]] | None:
    """[relative path, size, mtime in ns] of every input file, or None for a query (nothing to list).

    Chunks are cut by position in the input, so a resume is only right over the very same files.
    """
    if fmt == "sql":
        return None
    files = _parquet_files(source) if fmt == "parquet" else [Path(source)]
    root = Path(source)
    listed = []
    for file in files:
        if not file.is_file():
            continue
        stat = file.stat()
        name = file.name if file == root else file.relative_to(root).as_posix()
        listed.append([name, stat.st_size, stat.st_mtime_ns])
    return listed


def _input_changes(before: list[list[Any]], now: list[list[Any]]) -> list[str]:
    """What differs between two listings of the input, in words."""
    old = {name: (size, mtime) for name, size, mtime in before}
    new = {name: (size, mtime) for name, size, mtime in now}
    changes = [f"added {name}" for name in sorted(new.keys() - old.keys())]
    changes += [f"removed {name}" for name in sorted(old.keys() - new.keys())]
    for name in sorted(old.keys() & new.keys()):
        (size_was, mtime_was), (size, mtime) = old[name], new[name]
        if size != size_was:
            changes.append(f"changed {name} ({size_was:,} -> {size:,} bytes)")
        elif mtime != mtime_was:
            when = datetime.fromtimestamp(mtime / 1e9, UTC)
            changes.append(f"rewrote {name} (same size, modified {when:%Y-%m-%d %H:%M:%S} UTC)")
    return changes


def _batches(source: str, fmt: str, db_url: str | None, chunk_rows: int) -> tuple[Iterator[pa.RecordBatch], int | None]:
    """Record batches of the input (any sizes) and the total row count when cheap to know."""
    if fmt == "parquet":
        files = _parquet_files(source)
        if not files:
            raise InvalidInputError(field="input", value=source, expected="an existing Parquet file or folder")
        readers = [pq.ParquetFile(f) for f in files]  # iter_batches reads ~10x faster than a dataset scan here

        def parquet() -> Iterator[pa.RecordBatch]:
            for reader in readers:
                yield from reader.iter_batches(batch_size=chunk_rows)

        return parquet(), sum(r.metadata.num_rows for r in readers)
    if fmt == "csv":
        import pyarrow.csv as pcsv

        if not Path(source).is_file():
            raise InvalidInputError(field="input", value=source, expected="an existing CSV file")
        reader = pcsv.open_csv(source, read_options=pcsv.ReadOptions(block_size=8 << 20))
        return iter(reader), None
    if not db_url:
        raise InvalidInputError(field="db_url", value=db_url, expected="a database URL to run the query on")
    import sqlalchemy as sa

    engine = sa.create_engine(db_url)

    def frames() -> Iterator[pa.RecordBatch]:
        with engine.connect() as conn:
            for frame in pd.read_sql_query(sa.text(source), conn, chunksize=chunk_rows):
                yield from pa.Table.from_pandas(frame, preserve_index=False).to_batches()
        engine.dispose()

    return frames(), None


def _chunks(batches: Iterator[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``chunk_rows`` rows (the last may be shorter): the same cut on every run."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(chunk_rows - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == chunk_rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)


# ---------------------------------------------------------------------- scoring
Scored = tuple[pa.Table, pa.Table | None, int]  # the scored rows, the rejects (or quarantine) table, rows rejected


def _score(model: Any, table: pa.Table, version: str, output: str = "label", on_invalid: str = "fail",
           first_row: int = 0) -> Scored:
    """The chunk with its answer columns; rows that break the signature are handled as ``on_invalid`` says."""
    frame = table.to_pandas()
    try:
        answer = model.predict(frame, params={"output": output})
    except InvalidInputError:
        if model.signature is None:
            raise
        bad = invalid_rows(model.signature, frame)
        if not bad:  # not a row's problem: the model's own message says what is wrong
            raise
        if on_invalid == "fail":
            raise rows_error(bad, first_row) from None
        keep = np.ones(len(frame), dtype=bool)
        keep[list(bad)] = False
        side = rejects_table(bad, first_row) if on_invalid == "skip" else quarantine_table(table, bad, first_row)
        table = table.filter(pa.array(keep))
        answer = model.predict(frame[keep].reset_index(drop=True), params={"output": output}) \
            if table.num_rows else None
        return _answered(table, answer, version, output), side, len(bad)
    return _answered(table, answer, version, output), None, 0


def _answered(table: pa.Table, answer: Any, version: str, output: str) -> pa.Table:
    if answer is None:
        return table
    if output != "label":  # a frame: the label in "prediction" (for "both"), one "proba_<class>" per class
        for i, name in enumerate(answer.columns):
            column = "prediction" if output == "both" and i == 0 else f"proba_{name}"
            table = table.append_column(column, pa.array(answer.iloc[:, i].to_numpy()))
    else:
        predictions = np.asarray(answer)
        table = table.append_column("prediction", pa.array(predictions) if predictions.ndim == 1
                                    else pa.array(predictions.tolist()))
    n = table.num_rows
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    # constant columns built from NumPy, not from lists of Python objects (that alone was 60% of a chunk)
    versions = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype="int32")), pa.array([version]))
    return (table.append_column("model_version", versions.cast(pa.string()))
            .append_column("scored_at", pa.array(np.full(n, now_ms, dtype="int64")).cast(pa.timestamp("ms", tz="UTC"))))


def _score_remote(folder: str, table: pa.Table, version: str, trusted: bool | list[str], output: str,
                  on_invalid: str, first_row: int) -> Scored:
    from mloop.registry import load_model

    # the driver already checked the files and decided the trust; a worker loads with the same trust
    return _score(load_model(folder, verify=False, trusted=trusted), table, version, output, on_invalid, first_row)


def batch_predict(model_uri: str, source: str, output: str, *, input_format: str | None = None,
                  output_format: str | None = None, db_url: str | None = None, chunk_rows: int = 100_000,
                  engine: str = "local", ray_address: str | None = None, client: Any = None,
                  trusted: bool | list[str] = False, restart: bool = False, predict_output: str | None = None,
                  on_invalid: str = "fail", log_predictions: bool = False, settings: Any = None) -> BatchResult:
    """Score ``source`` with ``model_uri`` into ``output`` (a Parquet folder, or ``table:<name>`` in ``db_url``).

    ``predict_output`` is "label" (a ``prediction`` column), "proba" (one ``proba_<class>`` column per class) or
    "both"; by default the model's own default (``log_model(..., predict_output=...)``, else "label").
    ``on_invalid`` says what happens to rows that break the model's signature: "fail" stops with an error
    naming the rows and fields; "skip" leaves them out and writes one row per problem (row, field, expected,
    value, reason) to ``<output>.rejects/`` (``<table>__rejects``); "quarantine" writes the rows themselves
    with ``_row``, ``_reason`` and ``_errors`` to ``<output>.quarantine/`` (``<table>__quarantine``).
    ``rows_rejected`` counts them, in the whole output: a resumed run counts those of the run it finished too.
    ``log_predictions`` writes each scored chunk to the model's prediction log too (role ``batch``, with a
    ``prediction_id`` column in the output for labels sent later), so its monitors watch batch outputs as they
    watch online traffic (local engine; ``settings`` says where the log is).

    Runs again after a crash pick up where the last finished chunk left off, with the
    model version the first run resolved (an alias that moved meanwhile does not mix versions).
    A resume over input files that changed (added, removed, resized or rewritten) is refused;
    ``restart=True`` discards the previous run's output and scores everything anew.
    """
    if chunk_rows < 1:
        raise InvalidInputError(field="chunk_rows", value=chunk_rows, expected="1 or more")
    if engine not in ("local", "ray"):
        raise InvalidInputError(field="engine", value=engine, expected="local or ray")
    if on_invalid not in ON_INVALID:
        raise InvalidInputError(field="on_invalid", value=on_invalid, expected=f"one of {list(ON_INVALID)}")
    from mloop.registry import load_model
    from mloop.serving.model import source_version

    started = time.perf_counter()
    fmt = _input_format(source, input_format)
    sink, where = sink_for(output, output_format, db_url, on_invalid)
    previous = sink.state()
    files = _input_files(source, fmt)
    if previous is not None and restart:
        sink.reset(previous)
        previous = None
    concrete = previous["model"] if previous else source_version(model_uri, client)
    model = load_model(concrete, client=client, trusted=trusted)
    answer = model.output_for({"output": predict_output})  # InvalidInputError: a model without probabilities
    if previous is not None:
        _check_resume(previous, source, chunk_rows, files, where, answer, on_invalid)
    version = str(model.version) if model.version is not None else (model.run_id or Path(str(model.folder)).name)
    if previous is None:
        sink.start({"source": source, "chunk_rows": chunk_rows, "model": concrete, "version": version,
                    "started": datetime.now(UTC).isoformat(), "input_files": files, "predict_output": answer,
                    "on_invalid": on_invalid})
    done = sink.done()
    batches, total = _batches(source, fmt, db_url, chunk_rows)
    chunks = _chunks(batches, chunk_rows)
    n_chunks = -(-total // chunk_rows) if total else None
    tally = _Tally()
    log = _batch_log(log_predictions, engine, model, concrete, version, settings)
    if engine == "ray":
        _run_ray(model, chunks, done, sink, version, ray_address, n_chunks, trusted, (answer, on_invalid, chunk_rows),
                 tally)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="mloop-batch-write") as writer:
            pending = None  # one chunk is written (GIL released) while the next one is read and scored
            for index, table in enumerate(track(chunks, f"scoring with {model_uri}", total=n_chunks)):
                if index in done:
                    continue
                began = time.perf_counter()
                result = _score(model, table, version, answer, on_invalid, index * chunk_rows)
                if log is not None:
                    result = (result[0].append_column("prediction_id", log.ids(index, result[0].num_rows)),
                              *result[1:])
                    log.write(index, result[0], time.perf_counter() - began)
                if pending is not None:
                    pending.result()
                pending = writer.submit(sink.write, index, result[0], result[1])
                tally.add(result)
            if pending is not None:
                pending.result()
    rejected = sink.rejected() if done else tally.rejected  # a resume counts what the earlier run rejected too
    return BatchResult(rows=tally.rows, chunks_scored=tally.chunks, chunks_skipped=len(done),
                       seconds=time.perf_counter() - started, model_uri=concrete, model_version=version, output=where,
                       rows_rejected=rejected, rejects=str(sink.side) if sink.side and rejected else None)


def _batch_log(wanted: bool, engine: str, model: Any, uri: str, version: str, settings: Any) -> Any:
    """The prediction log a batch run writes to, when asked for (under the model's registered name)."""
    if not wanted:
        return None
    if engine != "local":
        raise InvalidInputError(field="log_predictions", value=True, expected="the local engine (not Ray)")
    from mloop.config import Settings
    from mloop.serving._batchlog import BatchLog

    name = getattr(model, "name", None) or (uri.split("/")[1] if uri.startswith("models:/") else None)
    if not name:
        raise InvalidInputError(field="log_predictions", value=uri,
                                expected="a registered model (models:/name/version): the log is kept per model")
    return BatchLog(settings or Settings.load(), name, version)


class _Tally:
    """Rows scored, chunks written and rows rejected so far."""

    def __init__(self) -> None:
        self.rows = self.chunks = self.rejected = 0

    def add(self, result: Scored) -> None:
        self.rows += result[0].num_rows
        self.chunks += 1
        self.rejected += result[2]


def _check_resume(previous: dict[str, Any], source: str, chunk_rows: int, files: list[list[Any]] | None,
                  where: str, answer: str = "label", on_invalid: str = "fail") -> None:
    """A resume must see the input and chunking the first run saw, or rows are scored twice and others never;
    and answer alike, or the output mixes columns."""
    if previous["source"] != source or previous["chunk_rows"] != chunk_rows:
        raise ConflictError(f"{where} holds a run over {previous['source']!r} in chunks of {previous['chunk_rows']}; "
                            "use a new output, the same input and chunk size to resume, or restart=True "
                            "(--restart) to start over.", field="output")
    before = (previous.get("predict_output", "label"), previous.get("on_invalid", "fail"))
    if before != (answer, on_invalid):
        raise ConflictError(f"{where} holds a run with predict output {before[0]!r} and on-invalid {before[1]!r}; "
                            f"resume with the same, or restart=True (--restart) to start over with {answer!r} and "
                            f"{on_invalid!r}.", field="output")
    recorded = previous.get("input_files")
    if recorded is None or files is None:  # a query, or a state written before inputs were recorded
        return
    changes = _input_changes(recorded, files)
    if changes:
        more = f" and {len(changes) - 5} more" if len(changes) > 5 else ""
        raise ConflictError(
            f"The input {source} changed since the batch run in {where} started: {'; '.join(changes[:5])}{more}. "
            "Chunks are cut by position, so resuming would score some rows twice and others never. "
            "Start over with restart=True (--restart), or write to a new output.", field="input")


def _run_ray(model: Any, chunks: Iterator[pa.Table], done: set[int], sink: Any, version: str,
             address: str | None, n_chunks: int | None, trusted: bool | list[str], how: tuple[str, str, int],
             tally: _Tally) -> None:
    """Chunks scored by Ray tasks (at most two per CPU in flight); the driver writes them in order."""
    import sys

    from mloop._util.optional import require

    ray = require("ray", extra="ray")
    if not ray.is_initialized():
        path = os.pathsep.join(p for p in sys.path if p)
        ray.init(address=address, runtime_env={"env_vars": {"PYTHONPATH": path}}, ignore_reinit_error=True,
                 include_dashboard=False, log_to_driver=False)
    remote = ray.remote(_score_remote)
    folder = str(model.folder)
    window = max(2, int(ray.cluster_resources().get("CPU", 2)) * 2)
    in_flight: list[tuple[int, Any]] = []
    output, on_invalid, chunk_rows = how

    def drain(keep: int) -> None:
        while len(in_flight) > keep:
            index, ref = in_flight.pop(0)
            result = ray.get(ref)
            sink.write(index, result[0], result[1])
            tally.add(result)

    for index, table in enumerate(track(chunks, "scoring on ray", total=n_chunks)):
        if index in done:
            continue
        in_flight.append((index, remote.remote(folder, table, version, trusted, output, on_invalid,
                                               index * chunk_rows)))
        drain(window)
    drain(0)
