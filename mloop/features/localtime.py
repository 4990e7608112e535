"""Wall-clock (naive) entity times read in a named time zone, with the daylight-saving changes made explicit.

When clocks go back, a local time such as 02:30 happens twice (it is *ambiguous*); when they go
forward, 02:30 never happens (it is *nonexistent*). pandas raises a bare ``ValueError`` on the first
such value; here the caller gets an error naming every such row and the choices, and picks one:

- ``ambiguous``: ``"raise"`` (default), ``"earliest"`` (the first occurrence, still on summer time),
  ``"latest"`` (the second, on winter time), ``"infer"`` (from the order of the rows, as pandas does),
  or ``"NaT"`` (no time: the row keeps nulls for every feature);
- ``nonexistent``: ``"raise"`` (default), ``"shift_forward"`` (to the first time after the gap),
  ``"shift_backward"`` (to the last time before it), or ``"NaT"``.

>>> import pandas as pd
>>> times = pd.Series(pd.to_datetime(["2026-10-25 02:30"]))
>>> str(localize(times, "Europe/Berlin", "entity_df.when", ambiguous="latest")[0])
'2026-10-25 01:30:00+00:00'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mloop.errors import InvalidInputError

__all__ = ["AMBIGUOUS", "NONEXISTENT", "localize"]

AMBIGUOUS = ("raise", "earliest", "latest", "infer", "NaT")
NONEXISTENT = ("raise", "shift_forward", "shift_backward", "NaT")
_SHOWN = 5  # rows named in an error; the count says how many more


def localize(times: Any, timezone: str, field: str, ambiguous: str = "raise", nonexistent: str = "raise") -> Any:
    """``times`` (naive pandas datetimes, wall-clock in ``timezone``) as aware UTC times.

    Raises ``InvalidInputError`` naming the rows and the choices when a time is ambiguous or
    nonexistent in ``timezone`` and the matching option is ``"raise"``.
    """
    if ambiguous not in AMBIGUOUS:
        raise InvalidInputError(field="ambiguous", value=ambiguous, expected=f"one of {list(AMBIGUOUS)}")
    if nonexistent not in NONEXISTENT:
        raise InvalidInputError(field="nonexistent", value=nonexistent, expected=f"one of {list(NONEXISTENT)}")
    try:
        times.iloc[:0].dt.tz_localize(timezone)
    except Exception as exc:  # unknown zone name
        raise InvalidInputError(field="timezone", value=timezone,
                                expected=f"an IANA time zone name such as 'Europe/Berlin' ({exc})") from None
    if ambiguous == "raise":
        _refuse(times, timezone, field, "ambiguous", ambiguous="NaT", nonexistent="shift_forward")
    if nonexistent == "raise":
        _refuse(times, timezone, field, "nonexistent", ambiguous=np.ones(len(times), dtype=bool), nonexistent="NaT")
    how: Any = ambiguous
    if ambiguous in ("earliest", "latest"):  # pandas spells these as one flag per row: True = summer time
        how = np.full(len(times), ambiguous == "earliest", dtype=bool)
    try:
        local = times.dt.tz_localize(timezone, ambiguous=how, nonexistent=nonexistent)
    except ValueError as exc:  # "infer" cannot tell from the rows' order
        raise InvalidInputError(
            f"{field}: cannot infer which occurrence of the repeated local times in {timezone} each row means "
            f"({exc}); pass ambiguous='earliest', 'latest' or 'NaT'.", field=field) from None
    return local.dt.tz_convert("UTC")


def _refuse(times: Any, timezone: str, field: str, problem: str, **options: Any) -> None:
    """Raise when localizing with ``options`` (which turn the ``problem`` rows into NaT) makes new NaTs."""
    converted = times.dt.tz_localize(timezone, **options)
    bad = np.flatnonzero(converted.isna().to_numpy() & times.notna().to_numpy())
    if not len(bad):
        return
    shown = ", ".join(f"row {i} ({times.iloc[i]})" for i in bad[:_SHOWN])
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    if problem == "ambiguous":
        what = f"happen twice in {timezone} (the clocks go back)"
        choices = ("ambiguous='earliest' (the first occurrence), 'latest' (the second), 'infer' (from the "
                   "rows' order) or 'NaT' (no time: the row gets null features)")
    else:
        what = f"never happen in {timezone} (the clocks jump forward)"
        choices = ("nonexistent='shift_forward' (the first time after the gap), 'shift_backward' (the last "
                   "time before it) or 'NaT' (no time: the row gets null features)")
    raise InvalidInputError(f"{field}: {len(bad)} local time(s) {what}: {shown}{more}. Pass {choices}, or give "
                            "aware timestamps.", field=field)
