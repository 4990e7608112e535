"""The ``mloop`` command line: Typer verbs that parse, call a capability and render with Rich."""

from __future__ import annotations

import sys

from mloop.cli._app import app, error_console
from mloop.errors import MloopError

__all__ = ["app", "main"]


def _register() -> None:
    # One line per verb group; each module attaches its commands to ``app``.
    from mloop.cli import (  # noqa: F401
        demo,
        experiments,
        gc,
        models,
        runs,
        server,
        serving,  # noqa: F401
    )


def main() -> None:
    """Entry point of the console script: user errors print a clear message, never a traceback."""
    _register()
    try:
        code = app(standalone_mode=False)
    except MloopError as exc:
        where = f" [{exc.field}]" if exc.field else ""
        error_console.print(f"[bold red]error{where}:[/] {exc.message}", highlight=False)
        sys.exit(2 if exc.http_status in (400, 422) else 1)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        error_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
