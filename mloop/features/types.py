"""Feature value types and how they map to DuckDB, Arrow and SQLite.

>>> Float64.name, Float64.duckdb
('Float64', 'DOUBLE')
>>> Float64.accepts("INTEGER"), Int64.accepts("DOUBLE")
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

from mloop.errors import InvalidInputError

__all__ = ["Bool", "DType", "Float32", "Float64", "Int32", "Int64", "String", "Timestamp", "dtype"]

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
String = DType("String", "VARCHAR", ("VARCHAR",))
Bool = DType("Bool", "BOOLEAN", ("BOOLEAN",))
Timestamp = DType("Timestamp", "TIMESTAMPTZ", ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "TIMESTAMP"))

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
