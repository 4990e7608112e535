"""The ``mloop`` command line: Typer verbs that parse, call a capability and render with Rich."""

from __future__ import annotations

import importlib
import os
import sys

from mloop.cli._app import app, error_console
from mloop.errors import MloopError

__all__ = ["app", "main"]


# The verb groups, one module each; each attaches its commands to ``app`` when imported.
VERBS = (
    "analysis",
    "automl",
    "auth",
    "automation",
    "demo",
    "events",
    "experiments",
    "features",
    "flow",
    "gc",
    "models",
    "monitor",
    "runs",
    "server",
    "serving",
    "tune",
    "ui",
    "validation",
)


def _register() -> None:
    if sys.argv[1:2] in (["flow"], ["scheduler"]):  # flows start fast: no other verb group (nor pandas) needed
        from mloop.cli import flow as _flow_only  # noqa: F401
        return
    for verb in VERBS:
        importlib.import_module(f"mloop.cli.{verb}")


def main() -> None:
    """Entry point of the console script: user errors print a clear message, never a traceback."""
    _register()
    try:
        code = app(standalone_mode=False)
    except MloopError as exc:
        from rich.markup import escape

        # Messages quote user values such as "[0, 23]": escape them so Rich prints them as written; and unwrapped,
        # since they quote paths and tracebacks too.
        where = escape(f" [{exc.field}]") if exc.field else ""
        error_console.print(f"[bold red]error{where}:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        sys.exit(2 if exc.http_status in (400, 422) else 1)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        error_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        # Typer may bring its own copy of click (typer._click), so usage errors are matched by class name.
        names = {c.__name__ for c in type(exc).__mro__}
        if "ClickException" in names and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        if "Abort" in names:
            sys.exit(1)
        if os.environ.get("MLOOP_DEBUG"):
            raise
        from rich.markup import escape

        from mloop._util.redact import redact

        text = escape(f"{type(exc).__name__}: {redact(str(exc))}")
        if _is_environment_error(exc):
            error_console.print(f"[bold red]error:[/] {text}\n[dim]Check the path, permissions, disk space or the "
                                "service named above; MLOOP_DEBUG=1 shows the traceback.[/]", highlight=False)
        else:
            error_console.print(f"[bold red]internal error:[/] {text}\n"
                                "[dim]This is a bug in mloop; MLOOP_DEBUG=1 shows the traceback.[/]", highlight=False)
        sys.exit(1)
    if code == 130:  # Typer turns Ctrl-C into this exit code without a word
        error_console.print("interrupted")
    if isinstance(code, int) and code:
        sys.exit(code)


def _is_environment_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from this machine or a service (a file, a full disk, Redis or a server that is down),
    not from mloop's own code: such an error is the user's to fix and must not be reported as a bug."""
    if isinstance(exc, OSError | MemoryError):
        return True
    return any(c.__name__ in ("ConnectionError", "TimeoutError", "AuthenticationError")
               or c.__module__.split(".")[0] in ("redis", "httpx", "httpcore")
               for c in type(exc).__mro__ if c.__module__ != "builtins")
