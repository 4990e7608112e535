"""``mloop ui``: the web UI, served by ``mloop server`` on this machine, and its URL."""

from __future__ import annotations

import typer

from mloop.cli._app import app, console


@app.command()
def ui(
    port: int = typer.Option(5000, min=1, max=65535, help="Port to listen on (on 127.0.0.1 only)."),
    home: str = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop)."),
    db_url: str = typer.Option(None, "--db-url", help="Metadata database URL."),
    artifact_root: str = typer.Option(None, "--artifact-root", help="Artifact root folder or URL (s3://...)."),
) -> None:
    """Open the web UI: starts the server on 127.0.0.1 and prints the URL to open (Ctrl-C stops it).

    To share the UI with others, run ``mloop server --host 0.0.0.0 --auth`` instead: it serves the same pages.
    """
    console.print(f"mloop UI: [bold]http://127.0.0.1:{port}/[/]", highlight=False, soft_wrap=True)
    serve_locally(port, home, db_url, artifact_root)


def serve_locally(port: int, home: str | None, db_url: str | None = None, artifact_root: str | None = None) -> None:
    """Serve the API and the pages on 127.0.0.1:``port`` until interrupted."""
    from mloop.cli.server import server

    # every option given: called as a function, a Typer option left out would arrive as its OptionInfo
    server(host="127.0.0.1", port=port, workers=1, home=home, db_url=db_url, artifact_root=artifact_root,
           log_level="warning", allowed_hosts=None, auth=None, insecure_no_auth=False)
