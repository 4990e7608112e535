"""``mloop models``: registered models, versions, aliases, environments, selection rules, lineage, audit."""

from __future__ import annotations

import json

import pandas as pd
import typer
from rich.table import Table

from mloop._util.clock import from_ms
from mloop.cli._app import app, console
from mloop.cli._render import frame_table, settings_from

models_app = typer.Typer(help="Model registry: list, show, versions, alias, env, select, lineage, audit, approve.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")
env_app = typer.Typer(help="Deployment environments: list, create, deploy, history.", no_args_is_help=True)
models_app.add_typer(env_app, name="env")
HOME = typer.Option(None, "--home", help="mloop home folder (default: $MLOOP_HOME or ./.mloop).")


def _registry(home: str | None):  # type: ignore[no-untyped-def]
    from mloop.registry import open_registry

    return open_registry(settings_from(home))  # through the server when MLOOP_TRACKING_URI is set


def _when(ms: int | None) -> str:
    when = from_ms(ms)
    return f"{when:%Y-%m-%d %H:%M:%S}" if when else ""


@models_app.command("list")
def list_(home: str = HOME) -> None:
    """Registered models with their latest version and aliases."""
    rows = [{"name": m.name, "latest": m.latest_version, "aliases": ", ".join(f"{a}=v{v}" for a, v in
                                                                             sorted(m.aliases.items())),
             "owner": m.owner, "description": m.description} for m in _registry(home).list_models()]
    console.print(frame_table(pd.DataFrame(rows, columns=["name", "latest", "aliases", "owner", "description"]),
                              title=f"{len(rows)} registered models"))


@models_app.command()
def show(name: str, version: int = typer.Argument(None, help="A version: its manifest, signature and extras."),
         home: str = HOME) -> None:
    """One model: description, tags, aliases and where each version is deployed (or one VERSION in detail)."""
    registry = _registry(home)
    if version is not None:
        _show_version(registry, name, version, home)
        return
    model = registry.get_model(name)
    table = Table(title=f"model {model.name}", show_header=False)
    for label, value in [("description", model.description), ("owner", model.owner),
                         ("created", _when(model.created)), ("latest version", model.latest_version)]:
        table.add_row(label, str(value))
    for key, value in sorted(model.tags.items()):
        table.add_row(f"tag {key}", value)
    for alias, version in sorted(model.aliases.items()):
        table.add_row(f"alias {alias}", f"v{version}")
    for env in registry.environments.list():
        if name in env["models"]:
            table.add_row(f"environment {env['env']}", f"v{env['models'][name]}")
    console.print(table)


def _show_version(registry, name: str, version: int, home: str | None) -> None:  # type: ignore[no-untyped-def]
    found = registry.get_version(name, version)
    manifest = registry.manifest(name, version)
    table = Table(title=f"{name} v{found.version}", show_header=False)
    rows = [("source", found.source), ("run", found.run_id or ""), ("flavor", found.flavor),
            ("artifact uri", registry.artifact_uri(name, version)), ("created", _when(found.created)),
            ("creator", found.creator), ("aliases", ", ".join(found.aliases)), ("description", found.description),
            ("python", manifest.get("python", "")),
            ("requirements", ", ".join(manifest.get("pip_requirements")
                                       or [f"{k}=={v}" for k, v in (manifest.get("requirements") or {}).items()])),
            ("code", ", ".join(manifest.get("code_paths") or [])),
            ("extra files", ", ".join(manifest.get("extra_files") or []))]
    rows += [(f"metrics.{k}", f"{v:g}") for k, v in sorted(found.metrics.items())]
    rows += [(f"tag {k}", v) for k, v in sorted(found.tags.items())]
    rows += [(f"metadata {k}", json.dumps(v)) for k, v in sorted((manifest.get("metadata") or {}).items())]
    for col in (found.signature or {}).get("inputs", []):
        rows.append((f"input {col['name']}", col["type"] + (" (nullable)" if col.get("nullable") else "")))
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)
    _print_pages(home, name, [found.version])


@models_app.command()
def versions(name: str, as_json: bool = typer.Option(False, "--json"), home: str = HOME) -> None:
    """Versions of a model with their source run, flavor, aliases and metrics."""
    found = _registry(home).list_versions(name)
    if as_json:
        console.print_json(json.dumps([v.to_dict() for v in found]))
        return
    rows = [{"version": v.version, "created": _when(v.created), "flavor": v.flavor, "run_id": v.run_id or "",
             "aliases": ", ".join(v.aliases), **{f"metrics.{k}": m for k, m in sorted(v.metrics.items())}}
            for v in found]
    console.print(frame_table(pd.DataFrame(rows), title=f"{len(rows)} versions of {name}"))
    _print_pages(home, name, [v.version for v in found])


def _print_pages(home: str | None, name: str, versions: list[int]) -> None:
    """The versions' pages, when the settings point at a server (one line each: a cut URL is no link)."""
    from mloop.ui import model_version_url, ui_base

    base = ui_base(settings_from(home))
    for version in versions if base is not None else []:
        console.print(f"page v{version}: {model_version_url(base, name, version)}", highlight=False, soft_wrap=True)


@models_app.command()
def alias(name: str, alias: str, version: int = typer.Argument(None, help="Version to point at."),
          delete: bool = typer.Option(False, "--delete", help="Remove the alias."), home: str = HOME) -> None:
    """Point ALIAS of NAME at VERSION (atomic), or remove it with --delete."""
    registry = _registry(home)
    if delete:
        registry.delete_alias(name, alias)
        console.print(f"deleted alias {alias} of {name}")
        return
    if version is None:
        console.print(f"{name}@{alias} -> v{registry.get_alias(name, alias).version}")
        return
    before = registry.set_alias(name, alias, version)
    console.print(f"{name}@{alias}: {'v' + str(before) if before else 'new'} -> v{version}")


@env_app.command("list")
def env_list(home: str = HOME) -> None:
    """Environments and what is deployed in each."""
    rows = [{"env": e["env"], "requires approval": "yes" if e["requires_approval"] else "",
             "models": ", ".join(f"{n}=v{v}" for n, v in sorted(e["models"].items()))}
            for e in _registry(home).environments.list()]
    console.print(frame_table(pd.DataFrame(rows, columns=["env", "requires approval", "models"]),
                              title="environments"))


@env_app.command("create")
def env_create(env: str, description: str = typer.Option("", "--description"),
               requires_approval: bool = typer.Option(False, "--requires-approval"), home: str = HOME) -> None:
    """Create an environment (optionally one where promotions need approval)."""
    _registry(home).environments.create(env, description, requires_approval)
    console.print(f"created environment {env}" + (" (promotions need approval)" if requires_approval else ""))


@env_app.command("deploy")
def env_deploy(name: str, version: int, env: str, reason: str = typer.Option("", "--reason"),
               home: str = HOME) -> None:
    """Put VERSION of NAME into ENV (a pending request when ENV requires approval)."""
    from mloop.registry import ApprovalRequest

    outcome = _registry(home).environments.deploy(name, version, env, reason)
    if isinstance(outcome, ApprovalRequest):
        console.print(f"approval request {outcome.id} is pending: mloop models approve {outcome.id}")
    else:
        console.print(f"{env}: {name} v{outcome.previous or '-'} -> v{outcome.version}")


@env_app.command("history")
def env_history(env: str = typer.Argument(None), model: str = typer.Option(None, "--model"),
                home: str = HOME) -> None:
    """Every change of what runs where, newest first."""
    rows = [{"time": _when(h.time), "env": h.env, "model": h.name, "from": h.previous, "to": h.version,
             "actor": h.actor, "reason": h.reason} for h in _registry(home).environments.history(env, model)]
    console.print(frame_table(pd.DataFrame(rows, columns=["time", "env", "model", "from", "to", "actor", "reason"]),
                              title="deployment history"))


@models_app.command()
def select(rule: str = typer.Argument(..., help="A stored rule's name or a YAML file."),
           apply: bool = typer.Option(False, "--apply", help="Move the alias / environment to the winner."),
           save: bool = typer.Option(False, "--save", help="Store the rule (a new version of its name)."),
           home: str = HOME) -> None:
    """Evaluate a selection rule: the winner and why every other candidate lost (a dry run without --apply)."""
    registry = _registry(home)
    chosen = registry.rules.resolve(rule)
    if save:
        console.print(f"saved rule {chosen.name} version {registry.rules.save(chosen)}")
    selection = registry.rules.apply(chosen) if apply else registry.rules.evaluate(chosen)
    console.print(selection.explain(), highlight=False)
    if not apply and selection.winner is not None:
        console.print("[dim](dry run: add --apply to move the alias / environment)[/]")


@models_app.command()
def rules(home: str = HOME) -> None:
    """Stored selection rules with their latest version."""
    rows = [{**r, "created": _when(r["created"])} for r in _registry(home).rules.list()]
    console.print(frame_table(pd.DataFrame(rows, columns=["name", "version", "created"]), title="rules"))


@models_app.command()
def lineage(name: str = typer.Argument(None), version: int = typer.Argument(None),
            dataset: str = typer.Option(None, "--dataset", help="A dataset digest: list versions trained on it."),
            home: str = HOME) -> None:
    """Where a version came from (run, params, metrics, datasets), or which versions used a dataset."""
    registry = _registry(home)
    if dataset:
        rows = [{"model": v.name, "version": v.version, "run_id": v.run_id} for v in
                registry.versions_trained_on(dataset)]
        console.print(frame_table(pd.DataFrame(rows, columns=["model", "version", "run_id"]),
                                  title=f"versions trained on {dataset[:12]}"))
        return
    if name is None or version is None:
        from mloop.errors import InvalidInputError

        raise InvalidInputError(field="version", value=None, expected="NAME VERSION, or --dataset DIGEST")
    console.print_json(json.dumps(registry.lineage(name, version), default=str))


@models_app.command()
def audit(model: str = typer.Option(None, "--model"), action: str = typer.Option(None, "--action"),
          limit: int = typer.Option(50, min=1), home: str = HOME) -> None:
    """Registry changes, newest first: who, when, what, before and after."""
    rows = [{"time": _when(e.time), "actor": e.actor, "action": e.action, "target": e.target,
             "before": json.dumps(e.before) if e.before is not None else "",
             "after": json.dumps(e.after) if e.after is not None else ""}
            for e in _registry(home).audit(model, action, limit)]
    console.print(frame_table(pd.DataFrame(rows, columns=["time", "actor", "action", "target", "before", "after"]),
                              title="audit log"))


@models_app.command()
def approve(request_id: int = typer.Argument(None, help="Request to decide (omit to list pending ones)."),
            comment: str = typer.Option("", "--comment"), reject: bool = typer.Option(False, "--reject"),
            home: str = HOME) -> None:
    """Approve (or --reject) a pending promotion; without an id, list pending requests."""
    environments = _registry(home).environments
    if request_id is None:
        rows = [{"id": r.id, "env": r.env, "model": r.name, "version": r.version, "by": r.requested_by,
                 "reason": r.reason} for r in environments.pending()]
        console.print(frame_table(pd.DataFrame(rows, columns=["id", "env", "model", "version", "by", "reason"]),
                                  title="pending approvals"))
        return
    if reject:
        environments.reject(request_id, comment)
        console.print(f"rejected request {request_id}")
    else:
        done = environments.approve(request_id, comment)
        console.print(f"approved request {request_id}: {done.env} now runs {done.name} v{done.version}")
