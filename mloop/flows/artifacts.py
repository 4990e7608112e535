"""Artifacts in the blob store, content-addressed: the key is the sha256 of the bytes, so equal values are stored once.

DataFrames and Arrow tables go as Parquet, NumPy arrays as ``.npy``, everything else through cloudpickle.

>>> import tempfile
>>> from mloop.store.blob import open_blob_store
>>> cas = ArtifactStore(open_blob_store(tempfile.mkdtemp()))
>>> ref = cas.save({"a": 1})
>>> ref.encoding, cas.load(ref)
('pickle', {'a': 1})
>>> cas.save({"a": 1}).sha256 == ref.sha256
True
"""

from __future__ import annotations

import io
import sys
from typing import Any, NamedTuple

from mloop.store.blob import BlobStore

PREFIX = "flows/cas"


class ArtifactRef(NamedTuple):
    """Where an artifact's bytes are (sha256) and how to read them back."""

    sha256: str
    encoding: str
    size: int


def encode(value: Any) -> tuple[bytes | memoryview, str]:
    """The bytes of ``value`` and their encoding name."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.DataFrame):
        import pyarrow as pa

        try:
            return _parquet(pa.Table.from_pandas(value, preserve_index=None)), "parquet-pandas"
        except (pa.ArrowException, TypeError, ValueError):  # mixed-type object columns: pickle instead
            pass
    pa_mod = sys.modules.get("pyarrow")
    if pa_mod is not None and isinstance(value, pa_mod.Table):
        try:
            return _parquet(value), "parquet-arrow"
        except pa_mod.ArrowException:  # types Parquet cannot hold (intervals, ...): pickle instead
            pass
    np = sys.modules.get("numpy")
    if np is not None and type(value) is np.ndarray and value.dtype != object:
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return buffer.getbuffer(), "npy"
    import cloudpickle

    return cloudpickle.dumps(value, protocol=5), "pickle"


def _parquet(table: Any) -> memoryview:
    """Parquet tuned for hand-offs between steps, where writing and reading fast matter more than size.

    Integers and times are DELTA_BINARY_PACKED (ids, counters and timestamps shrink to a few bits per value at
    memory speed), floats stay PLAIN, and neither is block-compressed: LZ4 gains little on them and costs ~20 ms
    per million rows each way. Text and everything else gets dictionaries and LZ4, where they pay off.
    No statistics: nothing filters these files.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    names = table.schema.names
    if len(set(names)) < len(names):  # per-column options are keyed by name: plain settings for such tables
        pq.write_table(table, sink, compression="lz4", write_statistics=False)
        return memoryview(sink.getvalue())
    delta = [f.name for f in table.schema if pa.types.is_integer(f.type)
             or pa.types.is_temporal(f.type) and not pa.types.is_interval(f.type)]
    other = [f.name for f in table.schema
             if f.name not in delta and not (pa.types.is_floating(f.type) or pa.types.is_boolean(f.type))]
    pq.write_table(table, sink, write_statistics=False, use_dictionary=other or False,
                   compression=dict.fromkeys(other, "lz4") if other else "none",
                   column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED") or None)
    return memoryview(sink.getvalue())


def decode(data: bytes, encoding: str) -> Any:
    if encoding == "pickle":
        import pickle

        return pickle.loads(data)
    if encoding == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if encoding in ("parquet-pandas", "parquet-arrow"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.ParquetFile(pa.BufferReader(data)).read()  # not read_table: it refuses duplicate column names
        # split_blocks: one block per column, so numeric columns are not copied again into a 2-D block
        return table.to_pandas(split_blocks=True) if encoding == "parquet-pandas" else table
    raise ValueError(f"unknown artifact encoding {encoding!r}")


class ArtifactStore:
    """Content-addressed artifacts above any BlobStore (written once here, for every backend)."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs

    @staticmethod
    def key(sha256: str) -> str:
        return f"{PREFIX}/{sha256[:2]}/{sha256}"

    def put(self, data: bytes | memoryview) -> str:
        return self.blobs.put_content(data, self.key).sha256

    def save(self, value: Any) -> ArtifactRef:
        data, encoding = encode(value)
        return ArtifactRef(self.put(data), encoding, len(data))

    def get(self, sha256: str) -> bytes:
        return self.blobs.get_bytes(self.key(sha256))

    def load(self, ref: ArtifactRef | tuple[str, str, int]) -> Any:
        sha, encoding = ref[0], ref[1]
        return decode(self.get(sha), encoding)
