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
    prediction_days: float = typer.Option(
        None, "--prediction-log-retention-days", min=0,
        help="Delete prediction log days older than this (default: the prediction_log_retention_days setting, "
             "90; 0 keeps them)."),
    home: str = typer.Option(None, "--home", help="mloop home folder."),
) -> None:
    """Purge deleted runs and experiments with their artifacts (never what a registered model needs), deleted
    flow runs with their tasks, artifacts and logs, and prediction log days past their retention; with
    MLOOP_TRACKING_URI set, the server does it all and this prints its report. The prediction log's files of
    hours closed two hours ago are joined into one per hour (what a serving process that ended left)."""
    settings = settings_from(home)
    if settings.remote:  # the server purges its stores and says what it did
        from mloop._util.clock import now_ms
        from mloop.tracking._http import HttpTrackingRepository

        older_ms = now_ms() - int(parse_age(older_than).total_seconds() * 1000)
        result = HttpTrackingRepository(settings.tracking_uri).gc_report(older_ms, prediction_days)
        predictions = {"days": result["prediction_days"], "files": result["prediction_files"]}
        retention = result["prediction_retention_days"]
        compacted = result.get("prediction_compacted", 0)  # a server from before compaction leaves it out
    else:
        from mloop.serving.predlog import compact_predictions, purge_predictions
        from mloop.tracking import TrackingClient

        result = TrackingClient(settings).gc(parse_age(older_than))
        predictions = purge_predictions(settings, retention_days=prediction_days)
        compacted = compact_predictions(settings)["compacted"]
        retention = settings.prediction_log_retention_days if prediction_days is None else prediction_days
    kept = [f"{result['kept_for_registry']} runs that registered models need" if result["kept_for_registry"] else "",
            f"{result['kept_for_flows']} flow runs while flows run (gc again once they end)"
            if result.get("kept_for_flows") else ""]
    console.print(f"purged {result['runs']} runs, {result['experiments']} experiments, {result['files']} files"
                  + "".join(f"; kept {k}" for k in kept if k), highlight=False)
    console.print(f"prediction log: deleted {predictions['days']} days ({predictions['files']} files) older than "
                  f"{retention:g} days" if retention else "prediction log: kept whole (retention 0)", highlight=False)
    if compacted:
        console.print(f"prediction log: joined {compacted} files of closed hours into one per hour", highlight=False)
