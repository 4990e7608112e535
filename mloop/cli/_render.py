"""Rendering helpers shared by the verbs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

from mloop.config import Settings

if TYPE_CHECKING:  # pandas costs ~0.4 s to import: every verb's --help would pay it
    import pandas as pd


def settings_from(home: str | None) -> Settings:
    return Settings.load(home=home)


def frame_table(frame: pd.DataFrame, title: str | None = None, max_rows: int = 50) -> Table:
    """A Rich table of a DataFrame (first ``max_rows`` rows)."""
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), overflow="fold")
    for _, row in frame.head(max_rows).iterrows():
        table.add_row(*(_cell(v) for v in row))
    return table


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None and NaN print as empty cells
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):  # pandas Timestamps included
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
