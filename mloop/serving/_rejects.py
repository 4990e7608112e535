"""Batch scoring's bad rows: which rows of a chunk break the signature, and why, as tables to write.

``Signature.validate`` reports the first bad value of each column. To find every bad row, each
failing column is checked again over the ranges around the row it named, until every range is clean:
a chunk with a few bad rows costs a few vectorized checks, never a loop over all its rows (about
0.1 s for 100,000 rows of which 0.1% are bad; a mostly bad chunk costs about a millisecond per bad row).

>>> import pandas as pd
>>> from mloop.registry.signature import ColumnSpec, Signature
>>> sig = Signature(inputs=(ColumnSpec(name="km", type="float", nullable=True),))
>>> bad = invalid_rows(sig, pd.DataFrame({"km": [1.0, "far", None, "x"]}))
>>> {row: [e.field for e in errors] for row, errors in bad.items()}
{1: ['km'], 3: ['km']}
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from mloop.errors import InvalidInputError
from mloop.registry.signature import FieldError, Signature

__all__ = ["ON_INVALID", "invalid_rows", "quarantine_table", "rejects_table", "rows_error"]

# what batch scoring does with rows that break the signature
ON_INVALID = ("fail", "skip", "quarantine")
_WINDOW = 1024  # rows checked per call: bounds the work spent again after each bad row
_ROW = re.compile(r"\brow \d+")


def invalid_rows(signature: Signature, frame: pd.DataFrame) -> dict[int, list[FieldError]]:
    """``{row: [FieldError, ...]}`` for every row of ``frame`` that breaks ``signature`` (rows by position).

    A problem of the whole input (a missing column, data that is no table) is not a row's: it raises
    InvalidInputError, whatever is done with bad rows.
    """
    errors = signature.validate(frame)
    whole = [e for e in errors if e.row is None]
    if whole:
        raise InvalidInputError(f"The input cannot be scored: {whole[0].message}. Skipping or quarantining rows "
                                "does not help with that; fix the input.", field=whole[0].field,
                                value=whole[0].value, expected=whole[0].expected)
    bad: dict[int, list[FieldError]] = {}
    for spec in signature.inputs:
        if not any(e.field == spec.name for e in errors):
            continue
        single = Signature(inputs=(spec,))
        column = frame[[spec.name]]
        ranges = [(lo, min(lo + _WINDOW, len(frame))) for lo in range(0, len(frame), _WINDOW)]
        while ranges:
            lo, hi = ranges.pop()
            found = single.validate(column.iloc[lo:hi].reset_index(drop=True)) if hi > lo else []
            if not found or found[0].row is None:
                continue
            row = lo + found[0].row
            bad.setdefault(row, []).append(_at(found[0], row))
            ranges += [(lo, row), (row + 1, hi)]  # rows before it may be bad too (nulls are reported first)
    return dict(sorted(bad.items()))


def _at(error: FieldError, row: int) -> FieldError:
    return replace(error, row=row, message=_ROW.sub(f"row {row}", error.message))


def rows_error(bad: dict[int, list[FieldError]], first_row: int) -> InvalidInputError:
    """The error of ``--on-invalid fail``: which input rows and fields are bad, and what to do."""
    rows = list(bad)
    shown = "; ".join(f"row {first_row + r}: " + ", ".join(_reason(e) for e in bad[r]) for r in rows[:5])
    more = f" (and {len(rows) - 5} more rows)" if len(rows) > 5 else ""
    first = bad[rows[0]][0]
    fields = sorted({e.field for errors in bad.values() for e in errors})
    return InvalidInputError(
        f"{len(rows)} input row(s) break the model's signature in {fields}: {shown}{more}. Fix them, or score the "
        "rest with --on-invalid skip (reasons to a rejects file) or quarantine (rows and reasons to a Parquet "
        "file).", field=first.field, value=first.value, expected=first.expected)


def _reason(error: FieldError) -> str:
    value = error.to_dict()["value"]
    shown = "null" if value is None else repr(value)
    return f"'{error.field}' is {shown[:60]}, expected {error.expected}"


def rejects_table(bad: dict[int, list[FieldError]], first_row: int) -> pa.Table:
    """One row per problem: the input row number, the field, what was expected, the value (JSON) and a message."""
    records = [(first_row + r, e) for r, errors in bad.items() for e in errors]
    return pa.table({
        "row": pa.array([r for r, _ in records], pa.int64()),
        "field": pa.array([e.field for _, e in records], pa.string()),
        "expected": pa.array([e.expected for _, e in records], pa.string()),
        "value": pa.array([_json(e) for _, e in records], pa.string()),
        "reason": pa.array([_reason(e) for _, e in records], pa.string())})


def quarantine_table(table: pa.Table, bad: dict[int, list[FieldError]], first_row: int) -> pa.Table:
    """The bad rows as they came in, with ``_row`` (their input row number), ``_reason`` and ``_errors`` (JSON)."""
    rows = list(bad)
    out = table.take(pa.array(rows, pa.int64()))
    errors = [[{k: v for k, v in e.to_dict().items() if k != "row"} for e in bad[r]] for r in rows]
    return (out.append_column("_row", pa.array([first_row + r for r in rows], pa.int64()))
            .append_column("_reason", pa.array(["; ".join(_reason(e) for e in bad[r]) for r in rows], pa.string()))
            .append_column("_errors", pa.array([orjson.dumps(e).decode() for e in errors], pa.string())))


def _json(error: FieldError) -> Any:
    return orjson.dumps(error.to_dict()["value"]).decode()
