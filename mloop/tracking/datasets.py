"""Dataset fingerprints: digest, row count, schema and source of what a run used."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mloop._util.clock import now_ms
from mloop._util.names import check_key, check_name
from mloop.errors import InvalidInputError
from mloop.tracking.entities import Dataset


def describe_dataset(data: Any, name: str | None = None, source: str | None = None) -> Dataset:
    """Fingerprint a DataFrame, Arrow table, NumPy array or a file / folder path.

    >>> import pandas as pd
    >>> d = describe_dataset(pd.DataFrame({"x": [1, 2]}), name="tiny")
    >>> (d.rows, d.schema)
    (2, {'x': 'int64'})
    """
    digest, rows, schema, default_source = _fingerprint(data)
    name = check_name(name, "name") if name else f"dataset-{digest[:8]}"
    dataset_id = hashlib.sha256(f"{name}\0{digest}".encode()).hexdigest()[:32]
    return Dataset(dataset_id=dataset_id, name=name, digest=digest, rows=rows, schema=schema,
                   source=source or default_source, created=now_ms())


def _fingerprint(data: Any) -> tuple[str, int | None, dict[str, str], str]:
    import numpy as np
    import pandas as pd

    if isinstance(data, str | Path):
        return _path_fingerprint(Path(data))
    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        hashed = pd.util.hash_pandas_object(data, index=False).to_numpy()
        schema = {str(c): str(t) for c, t in data.dtypes.items()}
        digest = hashlib.sha256(hashed.tobytes() + repr(sorted(schema.items())).encode()).hexdigest()
        return digest, len(data), schema, "<in-memory DataFrame>"
    if isinstance(data, np.ndarray):
        arr = np.ascontiguousarray(data)
        digest = hashlib.sha256(arr.tobytes() + f"{arr.dtype}{arr.shape}".encode()).hexdigest()
        return digest, int(arr.shape[0]) if arr.ndim else 1, {"array": f"{arr.dtype}{list(arr.shape)}"}, "<ndarray>"
    try:
        import pyarrow as pa

        if isinstance(data, pa.Table):
            return _fingerprint(data.to_pandas())[:3] + ("<in-memory Arrow table>",)
    except ImportError:  # pragma: no cover
        pass
    raise InvalidInputError(field="data", value=type(data).__name__,
                            expected="a pandas DataFrame, Arrow table, NumPy array or a file/folder path")


def _path_fingerprint(path: Path) -> tuple[str, int | None, dict[str, str], str]:
    if not path.exists():
        raise InvalidInputError(field="data", value=str(path), expected="an existing file or folder")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(path if path.is_dir() else path.parent).as_posix().encode())
        with f.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    rows, schema = None, {}
    if files and all(f.suffix == ".parquet" for f in files):
        import pyarrow.parquet as pq

        meta = [pq.read_metadata(f) for f in files]
        rows = sum(m.num_rows for m in meta)
        schema = {field.name: str(field.type) for field in meta[0].schema.to_arrow_schema()}
    return digest.hexdigest(), rows, schema, path.resolve().as_uri()


def log_to_active_run(data: Any, *, name: str | None, context: str, source: str | None = None,
                      tags: dict[str, str] | None = None) -> tuple[str, Dataset] | None:
    """Record ``data`` as an input of the run this code runs inside; ``(run_id, dataset)``, or None outside any.

    That run is the innermost ``mloop.start_run`` run of this thread, else the running flow task's own run
    (a step that builds a training set without opening a run still records it). Each of ``tags`` is a
    comma-separated set (``mloop.features.views``), merged with the values the run's tag already holds.

    >>> import mloop, pandas as pd, tempfile
    >>> _ = mloop.configure(home=tempfile.mkdtemp())
    >>> log_to_active_run(pd.DataFrame({"x": [1]}), name="tiny", context="training") is None
    True
    >>> with mloop.start_run(experiment="doc") as run:
    ...     run_id, dataset = log_to_active_run(pd.DataFrame({"x": [1]}), name="tiny", context="training")
    >>> (run_id == run.run_id, dataset.rows)
    (True, 1)
    """
    from mloop.tracking.run import run_stack

    check_key(context, "context")
    target = _active_target(run_stack())
    if target is None:
        return None
    repo, run_id = target
    dataset = repo.log_input(run_id, describe_dataset(data, name, source), context)
    if tags:
        have = repo.get_run(run_id).tags
        merged = {k: ",".join(sorted(set(filter(None, have.get(k, "").split(","))) | set(v.split(","))))
                  for k, v in tags.items()}
        repo.set_tags(run_id, merged)
    return run_id, dataset


def _active_target(stack: list[Any]) -> tuple[Any, str] | None:
    """(repository, run id) of the innermost open run, else of the running flow task, else None."""
    import sys

    if stack:
        return stack[-1].client.repo, stack[-1].run_id
    flows = sys.modules.get("mloop.flows._current")  # loaded only in a flow worker: no import cost elsewhere
    return flows.current.task_run() if flows is not None else None
