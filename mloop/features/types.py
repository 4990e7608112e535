"""Feature value types and how they map to DuckDB, Arrow and SQLite.

>>> Float64.name, Float64.duckdb
('Float64', 'DOUBLE')
>>> Float64.accepts("INTEGER"), Int64.accepts("DOUBLE")
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

from mloop.errors import InvalidInputError

__all__ = ["Bool", "DType", "Float32", "Float64", "Int32", "Int64", "String", "Timestamp", "dtype", "key_expected",
           "key_fits"]

_INTS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT")
_FLOATS = ("FLOAT", "DOUBLE", "DECIMAL", "REAL")


@dataclass(frozen=True, slots=True)
class DType:
    """A feature's declared type: its name, the DuckDB type it is cast to, and the source types it accepts."""

    name: str
    duckdb: str
    accepted: tuple[str, ...]

    def accepts(self, source_type: str) -> bool:
        """True when a source column of DuckDB type ``source_type`` can feed this feature without loss of meaning."""
        base = source_type.upper().split("(")[0].strip()
        return base in self.accepted

    def __repr__(self) -> str:
        return self.name


Float64 = DType("Float64", "DOUBLE", _FLOATS + _INTS)
Float32 = DType("Float32", "FLOAT", _FLOATS + _INTS)
Int64 = DType("Int64", "BIGINT", _INTS)
Int32 = DType("Int32", "INTEGER", _INTS)
String = DType("String", "VARCHAR", ("VARCHAR", "ENUM"))  # ENUM: a pandas category column, read by DuckDB
Bool = DType("Bool", "BOOLEAN", ("BOOLEAN",))
Timestamp = DType("Timestamp", "TIMESTAMPTZ", ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMP", "TIMESTAMPTZ_NS",
                                             "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"))  # every unit

_BY_NAME = {t.name: t for t in (Float64, Float32, Int64, Int32, String, Bool, Timestamp)}
_ALIASES = {"float": Float64, "double": Float64, "int": Int64, "integer": Int64, "str": String,
            "string": String, "bool": Bool, "boolean": Bool, "timestamp": Timestamp}


def dtype(value: DType | str) -> DType:
    """A DType from itself or its name (``"Float64"``, ``"float"``, ``"int"``, ``"string"``...)."""
    if isinstance(value, DType):
        return value
    found = _BY_NAME.get(str(value)) or _ALIASES.get(str(value).lower())
    if found is None:
        raise InvalidInputError(field="dtype", value=value, expected=f"one of {sorted(_BY_NAME)}")
    return found


INT_RANGES = {"Int64": (-(2**63), 2**63 - 1), "Int32": (-(2**31), 2**31 - 1)}


def key_fits(kind: DType | None, value: object) -> bool:
    """True when ``value`` is an entity key of declared type ``kind`` (None: undeclared, anything goes).

    >>> key_fits(Int64, 17), key_fits(Int64, "abc"), key_fits(Int64, 10**30), key_fits(String, "sf")
    (True, False, False, True)
    """
    if kind is None:
        return True
    if kind.name in INT_RANGES:
        low, high = INT_RANGES[kind.name]
        return isinstance(value, Integral) and not isinstance(value, bool) and low <= int(value) <= high
    if kind is String:
        return isinstance(value, str)
    if kind is Bool:
        return isinstance(value, bool)
    return value is not None


def key_expected(kind: DType, entity: str) -> str:
    """What a key of type ``kind`` must be, for error messages."""
    if kind.name in INT_RANGES:
        low, high = INT_RANGES[kind.name]
        what = f"an integer from {low} to {high}"
    else:
        what = {"String": "a string", "Bool": "true or false"}.get(kind.name, f"a {kind.name} value")
    return f"{what} (entity '{entity}' declares this key {kind.name})"
