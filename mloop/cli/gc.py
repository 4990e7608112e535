"""``mloop gc``: delete for real what was deleted long enough ago."""

from __future__ import annotations

import re
from datetime import timedelta

import typer

from mloop.cli._app import app, console
from mloop.cli._render import settings_from
from mloop.errors import InvalidInputError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '0s' -> timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text or "")
    if not match:
        raise InvalidInputError(field="--older-than", value=text,
                                expected="a whole number and a unit, e.g. 30d, 12h, 0s")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@app.command()
def gc(
    older_than: str = typer.Option("30d", "--older-than", help="Purge what was deleted longer ago than this."),
    home: str = typer.Option(None, "--home", help="mloop home folder."),
) -> None:
    """Purge deleted runs and experiments with their artifacts (never what a registered model needs)."""
    from mloop.tracking import TrackingClient

    result = TrackingClient(settings_from(home)).gc(parse_age(older_than))
    console.print(f"purged {result['runs']} runs, {result['experiments']} experiments, {result['files']} files"
                  + (f"; kept {result['kept_for_registry']} runs that registered models need"
                     if result["kept_for_registry"] else ""))
