"""``validate(data, schema)``: every violation with counts, shares and sample rows; vectorized per column.

>>> import pandas as pd
>>> from mloop.validation.schema import infer_schema
>>> schema = infer_schema(pd.DataFrame({"hour": [0, 12, 23], "fare": [3.5, 7.0, 9.25]}))
>>> result = validate(pd.DataFrame({"hour": [5, 77, 8]}), schema)
>>> result.passed
False
>>> for v in result.errors:
...     print(v.message)
hour: 1 of 3 rows (33.3%) outside the range [0, 23]; e.g. row 1: 77
fare: column is missing (expected a float column); present: hour
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mloop.errors import InvalidInputError
from mloop.validation._data import Col, as_frame
from mloop.validation.schema import CHECKS, ColumnSchema, Schema, load_schema

__all__ = ["DataValidationError", "ValidationResult", "Violation", "validate", "violation_masks"]

SAMPLES = 5
_HINTS = {
    ("float", "integer"): "cast with .astype('float64') where the data is produced",
    ("integer", "float"): "the values have fractions; round them or change the schema's type to float",
    ("datetime", "string"): "parse with pd.to_datetime(..., utc=True)",
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed check on one column: what was expected, how often it failed, and a few offending rows."""

    column: str
    check: str
    severity: str
    expected: str
    observed: str
    count: int
    share: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    hint: str = ""
    rows: int = 0

    @property
    def message(self) -> str:
        """One line a person can act on: column, how many rows, what was wrong, what was expected, examples."""
        if self.check in ("missing_column", "extra_column"):
            text = f"{self.column}: {self.observed} (expected {self.expected})"
        elif self.check == "range":
            text = (f"{self.column}: {self.count:,} of {self.rows:,} rows ({self.share:.1%}) outside the range "
                    f"{self.expected}")
        else:
            text = (f"{self.column}: {self.count:,} of {self.rows:,} rows ({self.share:.1%}) {self.observed}; "
                    f"expected {self.expected}")
        if self.samples:
            text += "; e.g. " + ", ".join(f"row {s['row']}: {s['value']!r}" for s in self.samples[:3])
        if self.hint:
            text += f" ({self.hint})" if self.check != "missing_column" else f"; {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "check": self.check, "severity": self.severity, "expected": self.expected,
                "observed": self.observed, "count": self.count, "share": self.share,
                "samples": [{"row": s["row"], "value": _json_safe(s["value"])} for s in self.samples],
                "message": self.message}


class DataValidationError(InvalidInputError):
    """Raised by ``ValidationResult.raise_if_failed``; ``.result`` holds every violation."""

    error_code = "DATA_VALIDATION_FAILED"

    def __init__(self, result: ValidationResult) -> None:
        errors = result.errors
        lines = "\n".join(f"  - {v.message}" for v in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"data validation failed: {len(errors)} error(s) in {result.n_rows:,} rows\n{lines}{more}",
                         field=errors[0].column if errors else None, value=None, expected="data matching the schema")
        self.result = result


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """Every violation found; ``passed`` is True when none has severity error."""

    violations: list[Violation]
    n_rows: int
    n_columns: int

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warn"]

    @property
    def passed(self) -> bool:
        return not any(v.severity == "error" for v in self.violations)

    def __bool__(self) -> bool:
        return self.passed

    def raise_if_failed(self) -> ValidationResult:
        """Raise ``DataValidationError`` listing every error; return self when there is none."""
        if not self.passed:
            raise DataValidationError(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "mloop.validation", "version": 1, "passed": self.passed, "rows": self.n_rows,
                "columns": self.n_columns, "violations": [v.to_dict() for v in self.violations]}

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([{k: v for k, v in d.items() if k != "samples"} for d in self.to_dict()["violations"]],
                            columns=["column", "check", "severity", "expected", "observed", "count", "share",
                                     "message"])

    def __str__(self) -> str:
        head = (f"{'passed' if self.passed else 'FAILED'}: {len(self.errors)} error(s), {len(self.warnings)} "
                f"warning(s) in {self.n_rows:,} rows x {self.n_columns} columns")
        return "\n".join([head, *(f"  [{v.severity}] {v.message}" for v in self.violations)])


def validate(data: Any, schema: Schema | dict[str, Any] | str, *, strict_numbers: bool = True) -> ValidationResult:
    """Check ``data`` (DataFrame, Arrow table, Parquet/CSV path, list of records) against ``schema``.

    Vectorized per column, never a Python loop per row; frames of up to 16 rows take a path without pandas
    overhead, so serving can call it per request. ``strict_numbers=False`` accepts integers where floats are
    expected (JSON payloads do not tell 3 from 3.0).
    """
    schema = load_schema(schema)
    if isinstance(data, list):
        import pandas as pd

        data = pd.DataFrame.from_records(data)
    frame = as_frame(data)
    n = frame.n_rows
    out: list[Violation] = []
    for spec in schema:
        if spec.name not in frame:
            if spec.required and spec.severity_of("missing_column") != "off":
                present = ", ".join(frame.names[:12]) + (" ..." if len(frame.names) > 12 else "")
                out.append(Violation(spec.name, "missing_column", spec.severity_of("missing_column"),
                                     f"a {spec.type} column", "column is missing", n, 1.0, rows=n,
                                     hint=f"present: {present or '(none)'}"))
            continue
        if n:
            _check_column(spec, frame.col(spec.name), n, out, strict_numbers)
    if not schema.allow_extra_columns:
        extra = [c for c in frame.names if c not in schema.columns]
        out.extend(Violation(c, "extra_column", CHECKS["extra_column"], "only the schema's columns",
                             "column not in the schema", n, 1.0, rows=n) for c in extra)
    return ValidationResult(out, n, len(frame.names))


def violation_masks(data: Any, schema: Schema) -> list[tuple[str, str, np.ndarray]]:
    """(column, check, the rows that fail it) of each check some row of ``data`` fails, in ``validate``'s order;
    the check of a column's share of nulls is kept whatever that share (it is judged on each subset).

    Summed over any subset of the rows, a mask gives the count ``validate`` reports for that subset when the
    columns' logical types do not depend on their values (numbers, Arrow-backed text) and the schema has no
    ``unique`` check (duplicates are a property of the subset) nor refuses extra columns.
    """
    frame = as_frame(data)
    found = _Masks()
    for spec in schema:
        if spec.name in frame and frame.n_rows:
            _check_column(spec, frame.col(spec.name), frame.n_rows, found)
    return found.masks


class _Masks(list[Violation]):
    """Where ``violation_masks`` collects each failed check's mask instead of its violation."""

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[tuple[str, str, np.ndarray]] = []


def _add(out: list[Violation], spec: ColumnSchema, col: Col, check: str, mask: np.ndarray, n: int, expected: str,
         observed: str, hint: str = "") -> None:
    if not mask.any():
        return
    severity = spec.severity_of(check)
    if severity == "off":
        return
    if isinstance(out, _Masks):
        out.masks.append((spec.name, check, mask))
        return
    rows = np.flatnonzero(mask)
    first = rows[:SAMPLES]
    samples = [{"row": int(r), "value": v} for r, v in zip(first.tolist(), col.take(first), strict=True)]
    out.append(Violation(spec.name, check, severity, expected, observed, int(rows.size), rows.size / n, samples,
                         hint, n))


def _check_column(spec: ColumnSchema, col: Col, n: int, out: list[Violation], strict_numbers: bool = True) -> None:
    kind = col.kind
    if not strict_numbers and kind == "integer" and spec.type == "float":
        kind = "float"
    nulls = col.null_mask
    present = ~nulls
    numbers: np.ndarray | None = None
    if kind not in (spec.type, "null"):
        numbers = _check_type(spec, col, kind, present, n, out)
    elif spec.type in ("integer", "float", "datetime"):
        numbers = col.numeric
    if not spec.nullable:
        _add(out, spec, col, "not_null", nulls, n, "no missing values", "missing")
    if spec.max_null_share is not None and n and (isinstance(out, _Masks) or col.null_count / n > spec.max_null_share):
        _add(out, spec, col, "null_share", nulls, n, f"at most {spec.max_null_share:.1%} missing",
             f"missing ({col.null_count / n:.1%} > {spec.max_null_share:.1%})")
    if numbers is not None:
        _check_numbers(spec, col, numbers, n, out)
    if spec.categories is not None or spec.unique or spec.pattern or spec.min_length is not None \
            or spec.max_length is not None:
        _check_values(spec, col, n, out)


def _check_type(spec: ColumnSchema, col: Col, kind: str, present: np.ndarray, n: int,
                out: list[Violation]) -> np.ndarray | None:
    """Report values of the wrong type; return numbers when they can still be range-checked."""
    expected = f"{spec.type} values"
    observed = f"are {kind} ({col.dtype})"
    hint = _HINTS.get((spec.type, kind), "")
    numbers = None
    bad = present
    if spec.type in ("integer", "float") and kind in ("integer", "float", "string", "mixed", "boolean"):
        numbers = col.numeric
        if spec.type == "integer" and kind == "float":
            bad = present & ~(np.isfinite(numbers) & (numbers == np.floor(numbers)))
            if not bad.any():
                return numbers  # whole numbers stored as float (pandas does this when a column has nulls): fine
            observed = "have fractional or infinite values where integers are expected"
        elif kind in ("string", "mixed"):
            unparsed = present & np.isnan(numbers)
            bad = unparsed if unparsed.any() else present
            observed = (f"are not numbers ({col.dtype})" if unparsed.any()
                        else f"are numbers stored as text ({col.dtype})")
    elif spec.type == "string" and kind == "mixed":
        codes, uniques = col.factorize()
        not_str = np.fromiter((not isinstance(u, str) for u in uniques), bool, len(uniques))
        bad = np.append(not_str, False)[codes]
        observed = "are not strings (mixed types)"
    elif spec.type == "datetime" and kind in ("integer", "float"):
        numbers = None
    _add(out, spec, col, "type", bad, n, expected, observed, hint)
    return numbers


def _check_numbers(spec: ColumnSchema, col: Col, numbers: np.ndarray, n: int, out: list[Violation]) -> None:
    lo, hi = _bound(spec.min, spec.type), _bound(spec.max, spec.type)
    inf = np.isinf(numbers)
    has_inf = bool(inf.any())
    if has_inf and not spec.allow_inf:
        _add(out, spec, col, "finite", inf, n, "finite numbers", "are infinite")
    if lo is None and hi is None:
        return
    if lo is not None and hi is not None:
        outside = (numbers < lo) | (numbers > hi)
    else:
        outside = numbers < lo if lo is not None else numbers > hi
    if has_inf and not spec.allow_inf:
        outside &= ~inf
    if outside.any():
        _add(out, spec, col, "range", outside, n, f"[{_show(spec.min)}, {_show(spec.max)}]", "outside")


def _check_values(spec: ColumnSchema, col: Col, n: int, out: list[Violation]) -> None:
    """Checks on distinct values (categories, pattern, length, uniqueness), mapped back to rows by code."""
    only_categories = not (spec.unique or spec.pattern or spec.min_length is not None or spec.max_length is not None)
    if only_categories and spec.categories is not None and n > 64 and col.kind == "string":
        unseen_rows = col.not_in(spec.categories)  # a hash lookup per row, no factorization
        if unseen_rows is not None:
            if unseen_rows.any():
                first = np.flatnonzero(unseen_rows)[:50]
                new = list(dict.fromkeys(col.take(first)))[:5]
                _add(out, spec, col, "category", unseen_rows, n, f"one of {_shown(spec.categories)}",
                     f"have categories never seen in training: {', '.join(map(repr, new))}")
            return
    codes, uniques = col.factorize()
    if not len(uniques):
        return
    valid = codes >= 0
    if spec.categories is not None:
        allowed = set(spec.categories)
        unseen = np.fromiter((u not in allowed for u in uniques), bool, len(uniques))
        if unseen.any():
            new = [_plain(u) for u in uniques[unseen][:5]]
            _add(out, spec, col, "category", np.append(unseen, False)[codes], n, f"one of {_shown(spec.categories)}",
                 f"have categories never seen in training: {', '.join(map(repr, new))}")
    if spec.pattern or spec.min_length is not None or spec.max_length is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        is_str = np.fromiter((isinstance(u, str) for u in uniques), bool, len(uniques)) \
            if col.kind != "string" else np.ones(len(uniques), dtype=bool)
        text = pa.array(np.where(is_str, uniques, "").astype(object), type=pa.string())
        if spec.pattern:
            ok = pc.match_substring_regex(text, f"^(?:{spec.pattern})$").to_numpy(zero_copy_only=False)
            _add(out, spec, col, "pattern", np.append(~ok & is_str, False)[codes], n,
                 f"matching /{spec.pattern}/", "do not match the pattern")
        if spec.min_length is not None or spec.max_length is not None:
            sizes = pc.utf8_length(text).to_numpy(zero_copy_only=False)
            bad = np.zeros(len(uniques), dtype=bool)
            if spec.min_length is not None:
                bad |= sizes < spec.min_length
            if spec.max_length is not None:
                bad |= sizes > spec.max_length
            _add(out, spec, col, "length", np.append(bad & is_str, False)[codes], n,
                 f"length in [{spec.min_length}, {spec.max_length}]", "have a length outside it")
    if spec.unique and valid.sum() > len(uniques):
        counts = np.bincount(codes[valid], minlength=len(uniques))
        _add(out, spec, col, "unique", np.append(counts > 1, False)[codes], n, "unique values",
             "share a value with another row")


def _shown(categories: list[Any]) -> str:
    return ", ".join(map(repr, categories[:12])) + (" ..." if len(categories) > 12 else "")


def _bound(value: Any, kind: str) -> float | None:
    if value is None:
        return None
    if kind == "datetime":
        import pandas as pd

        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        return stamp.value / 1e9
    return float(value)


def _show(value: Any) -> str:
    if value is None:
        return "..."
    return f"{value:g}" if isinstance(value, float) else str(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)  # nan, inf, -inf: JSON has no literal for them
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value

