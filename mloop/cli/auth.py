"""``mloop auth`` (users, tokens and roles: straight in the database for the admin on the server's machine, or
through the server's REST API when ``MLOOP_TRACKING_URI`` names one) and ``mloop login`` (a client keeps a token
for a server)."""

from __future__ import annotations

from datetime import timedelta

import typer
from rich.table import Table

from mloop._util.clock import from_ms
from mloop.cli._app import app, console, error_console
from mloop.cli._render import settings_from
from mloop.errors import InvalidInputError

auth_app = typer.Typer(help="Users, service accounts, API tokens and project roles of `mloop server`.",
                       no_args_is_help=True)
users_app = typer.Typer(help="Users and service accounts.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: shown once at creation, stored hashed.", no_args_is_help=True)
auth_app.add_typer(users_app, name="users")
auth_app.add_typer(tokens_app, name="tokens")
app.add_typer(auth_app, name="auth")
HOME = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop).")


def _store(home: str | None):  # type: ignore[no-untyped-def]
    """The database's AuthStore, or with ``MLOOP_TRACKING_URI`` naming a server, that server's REST API (the
    caller's token must be a server admin's)."""
    settings = settings_from(home)
    if settings.remote:
        from mloop.auth.remote import RemoteAuthAdmin

        return RemoteAuthAdmin(settings.tracking_uri)
    from mloop.auth import AuthStore

    return AuthStore(settings.db_url)


def _when(ms: int | None) -> str:
    moment = from_ms(ms)
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


@users_app.command("add")
def users_add(name: str, service_account: bool = typer.Option(False, "--service-account",
                                                              help="A service account (CI, `mloop serve`)."),
              admin: bool = typer.Option(False, "--admin", help="A server-wide admin."), home: str = HOME) -> None:
    """Add a user or a service account."""
    user = _store(home).add_user(name, service_account=service_account, admin=admin)
    console.print(f"added {user.kind} '{user.name}'" + (" (server admin)" if user.is_admin else ""), highlight=False)


@users_app.command("list")
def users_list(home: str = HOME) -> None:
    """Users and service accounts with their roles."""
    table = Table()
    for column in ("name", "kind", "admin", "disabled", "roles", "created"):
        table.add_column(column, overflow="fold")
    for u in _store(home).list_users():
        roles = ", ".join(f"{project}: {role}" for project, role in sorted(u.roles.items()))
        table.add_row(u.name, u.kind, "yes" if u.is_admin else "", "yes" if u.disabled else "", roles,
                      _when(u.created))
    console.print(table)


@users_app.command("disable")
def users_disable(name: str, enable: bool = typer.Option(False, "--enable", help="Enable the user again."),
                  home: str = HOME) -> None:
    """Disable a user: its tokens stop working (on a running server within its token cache time, 10 s)."""
    _store(home).set_disabled(name, not enable)
    console.print(f"{'enabled' if enable else 'disabled'} '{name}'", highlight=False)


@tokens_app.command("create")
def tokens_create(name: str, expires: str = typer.Option(None, "--expires", help="Lifetime such as 30d, 12h "
                                                         "(default: never expires)."),
                  label: str = typer.Option("", "--label", help="What the token is for."),
                  service_account: bool = typer.Option(False, "--service-account",
                                                       help="Create the service account NAME if it does not exist."),
                  home: str = HOME) -> None:
    """Create a token for NAME; it is printed once, here, and never again."""
    from mloop.errors import NotFoundError

    store = _store(home)
    if service_account:
        try:
            store.user(name)
        except NotFoundError:
            store.add_user(name, service_account=True)
    token = store.create_token(name, expires_in=_lifetime(expires), label=label)
    error_console.print(f"token {token.prefix} for '{name}' (copy it now: it is not shown again):", highlight=False)
    print(token.text)  # alone on stdout, so a script can capture it


@tokens_app.command("list")
def tokens_list(name: str = typer.Argument(None, help="Only this user's tokens."), home: str = HOME) -> None:
    """Tokens by prefix, owner and dates (never the tokens themselves)."""
    table = Table()
    for column in ("prefix", "user", "label", "created", "expires", "revoked", "last used"):
        table.add_column(column, overflow="fold", no_wrap=column == "prefix")
    for t in _store(home).list_tokens(name):
        table.add_row(t.prefix, t.user, t.label, _when(t.created), _when(t.expires) or "never", _when(t.revoked),
                      _when(t.last_used))
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(prefix: str, home: str = HOME) -> None:
    """Revoke a token by its prefix (a running server refuses it within 10 s)."""
    _store(home).revoke_token(prefix)
    console.print(f"revoked token {prefix}", highlight=False)


@auth_app.command("grant")
def grant(name: str, project: str, role: str, home: str = HOME) -> None:
    """Give NAME the ROLE (viewer, editor, maintainer, admin) in PROJECT."""
    _store(home).grant(name, project, role)
    console.print(f"'{name}' is {role.lower()} in project '{project}'", highlight=False)


@auth_app.command("revoke")
def revoke(name: str, project: str, home: str = HOME) -> None:
    """Take away NAME's role in PROJECT."""
    had = _store(home).revoke(name, project)
    console.print(f"'{name}' has no role in '{project}'" + ("" if had else " (had none)"), highlight=False)


@app.command()
def login(server: str = typer.Option(..., "--server", help="URL of the mloop server."),
          token: str = typer.Option(None, "--token", help="The token (default: asked for, not echoed).")) -> None:
    """Check a token against a server and keep it for that server (MLOOP_TOKEN overrides it)."""
    import httpx

    from mloop.auth.credentials import save_token
    from mloop.errors import AuthenticationError, BackendError

    token = (token or typer.prompt("token", hide_input=True)).strip()
    try:
        answer = httpx.get(server.rstrip("/") + "/api/auth/whoami", headers={"Authorization": f"Bearer {token}"},
                           timeout=30)
    except httpx.HTTPError as exc:
        raise BackendError(f"The mloop server at {server} did not answer: {exc}") from exc
    if answer.status_code == 401:
        raise AuthenticationError(f"{server} refused the token: it is unknown, expired or revoked.")
    if answer.status_code != 200:
        raise BackendError(f"{server} answered {answer.status_code} to /api/auth/whoami; is it an mloop server?")
    path = save_token(server, token)
    me = answer.json()
    console.print(f"logged in to {server} as '{me.get('name')}'; token kept in {path}", highlight=False)
    if me.get("auth") is False:
        error_console.print(f"[yellow]note:[/] {server} runs without auth: it checks no token.", highlight=False)


def _lifetime(text: str | None) -> timedelta | None:
    if text is None:
        return None
    from mloop.cli.gc import parse_age

    try:
        lifetime = parse_age(text)
    except InvalidInputError:
        lifetime = timedelta(0)
    if lifetime <= timedelta(0):
        raise InvalidInputError(field="--expires", value=text, expected="a positive whole number and a unit, "
                                "e.g. 30d, 12h")
    return lifetime
