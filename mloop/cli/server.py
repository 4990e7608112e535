"""``mloop server``: the REST API (tracking and every capability) with OpenAPI docs at /docs."""

from __future__ import annotations

import os

import typer

from mloop._util.redact import redact
from mloop.cli._app import app, console, error_console
from mloop.cli._listen import ALLOWED_HOSTS_HELP, answer_for, exposure_warning
from mloop.errors import InvalidInputError


@app.command()
def server(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1 keeps it on this machine)."),
    port: int = typer.Option(5000, min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes."),
    home: str = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop)."),
    db_url: str = typer.Option(None, "--db-url", help="Metadata database URL."),
    artifact_root: str = typer.Option(None, "--artifact-root", help="Artifact root folder or URL (s3://...)."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
    allowed_hosts: str = typer.Option(None, "--allowed-hosts", help=ALLOWED_HOSTS_HELP),
    auth: bool = typer.Option(None, "--auth/--no-auth", help="Ask every request for a token and check its roles "
                              "(default: the auth setting, MLOOP_AUTH; see `mloop auth`)."),
    insecure_no_auth: bool = typer.Option(False, "--insecure-no-auth", help="Listen beyond this machine without "
                                          "auth: anyone who reaches the port can read, write and delete."),
) -> None:
    """Serve the REST API; point clients at it with MLOOP_TRACKING_URI=http://HOST:PORT."""
    import uvicorn

    from mloop.config import Settings

    # Resolve once here so a bad URL fails now, then hand the settings to workers through the environment.
    settings = Settings.load(home=home, db_url=db_url, artifact_root=artifact_root, tracking_uri="", auth=auth)
    refuse_open_without_auth(host, settings.auth, insecure_no_auth)
    settings.export_stores()
    os.environ["MLOOP_AUTH"] = "true" if settings.auth else "false"  # the workers build their app from it
    settings = answer_for(settings, host, allowed_hosts)
    from mloop.store.sql import open_database

    open_database(settings.db_url)  # migrate before workers start
    if settings.auth:
        from mloop.auth import AuthStore

        if not any(u.is_admin and not u.disabled for u in AuthStore(settings.db_url).list_users()):
            error_console.print("[yellow]note:[/] auth is on and no server admin exists yet: on this machine, "
                                "`mloop auth users add NAME --admin` then `mloop auth tokens create NAME`.",
                                highlight=False)
    warning = None if settings.auth else exposure_warning(host, settings, "read and write")
    if warning:
        error_console.print(warning, highlight=False)
    console.print(f"mloop server on http://{host}:{port} (API docs at /docs), store {redact(settings.db_url)}",
                  highlight=False, soft_wrap=True)  # a URL cut over lines cannot be copied
    if settings.auth:
        console.print(f"web UI: sign in at http://{host}:{port}/login with a token", highlight=False, soft_wrap=True)
    uvicorn.run("mloop.server.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, timeout_graceful_shutdown=10)


def refuse_open_without_auth(host: str, auth: bool, insecure: bool) -> None:
    """Refuse to listen beyond loopback without auth, unless ``insecure`` says so (then warn, loudly)."""
    from mloop._util.asgi import LOOPBACK_HOSTS

    if auth or host in LOOPBACK_HOSTS:
        return
    if not insecure:
        raise InvalidInputError(field="--host", value=host,
                                expected="a loopback address (127.0.0.1) unless auth is on: pass --auth (and "
                                "create users with `mloop auth`), or --insecure-no-auth to open it to anyone")
    error_console.print(f"[bold red]WARNING: listening on {host} WITHOUT AUTHENTICATION (--insecure-no-auth): "
                        "anyone who can reach this port can read, change and delete everything.[/]", highlight=False)
