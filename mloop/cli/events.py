"""``mloop events``: the outbox of registry and feature events, and a delivery worker for serverless setups."""

from __future__ import annotations

import threading

import typer
from rich.table import Table

from mloop._util.clock import from_ms
from mloop.cli._app import app, console
from mloop.cli._render import settings_from

events_app = typer.Typer(help="Durable events: list deliveries, retry a dead one, deliver, purge old ones.",
                         no_args_is_help=True)
app.add_typer(events_app, name="events")
HOME = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop).")


def _db(home: str | None):  # type: ignore[no-untyped-def]
    from mloop.store.sql import open_database

    return open_database(settings_from(home).db_url)


@events_app.command("list")
def list_(pending: bool = typer.Option(False, "--pending", help="Only deliveries still to send."),
          failed: bool = typer.Option(False, "--failed", help="Only dead-lettered deliveries."),
          limit: int = typer.Option(100, "--limit", min=1, max=10_000), home: str = HOME) -> None:
    """Deliveries of events to webhooks, newest first."""
    from mloop.errors import InvalidInputError
    from mloop.events.query import list_deliveries

    if pending and failed:
        raise InvalidInputError(field="--pending/--failed", value="both", expected="at most one of them")
    rows = list_deliveries(_db(home), "pending" if pending else "failed" if failed else "all", limit)
    table = Table()
    for column in ("id", "event", "subject", "webhook", "state", "attempts", "created", "event id", "last error"):
        table.add_column(column, overflow="fold")
    for r in rows:
        created = from_ms(r.created)
        table.add_row(str(r.id), r.event, r.subject or "", str(r.webhook_id), r.state, str(r.attempts),
                      f"{created:%Y-%m-%d %H:%M:%S}" if created else "", r.event_id, r.last_error)
    console.print(table)


@events_app.command()
def retry(delivery: int = typer.Argument(..., help="Delivery id (from `mloop events list --failed`)."),
          home: str = HOME) -> None:
    """Send a dead-lettered delivery again, with a fresh count of attempts, at a worker's next pass."""
    from mloop.events.query import retry as retry_delivery

    retry_delivery(_db(home), delivery)
    console.print(f"delivery {delivery} is pending again")


@events_app.command()
def purge(older_than: str = typer.Option("30d", "--older-than", help="Age of the settled events to delete."),
          home: str = HOME) -> None:
    """Delete settled events (every delivery delivered or dead) older than --older-than, e.g. 30d, 12h."""
    from mloop.cli.gc import parse_age
    from mloop.events.query import purge as purge_events

    console.print(f"purged {purge_events(_db(home), parse_age(older_than))} events")


@events_app.command()
def deliver(once: bool = typer.Option(False, "--once", help="One pass over what is due now, then exit."),
            until_empty: bool = typer.Option(False, "--until-empty",
                                             help="Deliver (waiting out backoffs) until nothing is pending."),
            timeout: float = typer.Option(600.0, "--timeout", min=0, help="Give up --until-empty after this."),
            max_attempts: int = typer.Option(6, "--max-attempts", min=1, max=100,
                                             help="Attempts before a delivery is dead-lettered."),
            backoff: float = typer.Option(1.0, "--backoff", min=0, max=3600,
                                          help="Seconds before the first retry; doubles each time, with jitter."),
            poll: float = typer.Option(1.0, "--poll", min=0.05, max=3600, help="Seconds between idle polls."),
            home: str = HOME) -> None:
    """Run a delivery worker (beside any others): forever, or --once, or --until-empty."""
    from mloop.events.worker import DeliveryWorker

    worker = DeliveryWorker(settings_from(home), max_attempts=max_attempts, backoff=backoff)
    try:
        if once:
            console.print(f"{worker.run_once()} attempts made")
        elif until_empty:
            done = worker.run_until_empty(timeout)
            console.print("nothing pending" if done else f"still pending after {timeout:g} s")
            if not done:
                raise typer.Exit(1)
        else:
            console.print("delivering events (Ctrl-C stops)")
            worker.serve(threading.Event(), poll)
    finally:
        worker.close()
