"""What the caller of a listing may see, for the handlers: every list and search endpoint asks here once.

With auth off, or for a server-wide admin, nothing is filtered. Otherwise a listing keeps the resources of the
projects where the caller holds at least viewer (mloop.auth.visibility): inside its own SQL when it is paged
(``sql_*`` conditions, or the experiment ids a run search is scoped to), so a page of ``limit`` holds ``limit``
visible resources and totals count only those; after the query for the short listings that are not paged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement

from mloop.auth.projects import project_of
from mloop.auth.roles import DEFAULT_PROJECT, PROJECT_TAG, Role
from mloop.auth.visibility import (
    Projects,
    model_projects,
    model_visible,
    run_projects,
    run_visible,
    visible_alert_rules,
    visible_experiment_ids,
    visible_projects,
)
from mloop.errors import PermissionDeniedError
from mloop.server.auth import identity_of
from mloop.store.sql import open_database

__all__ = ["NO_EXPERIMENT", "experiments_for_search", "keep_visible", "projects_of", "require_role",
           "sql_model_visible", "sql_run_visible", "tagged_visible", "visible_alert_rule_names", "visible_models",
           "visible_runs"]

T = TypeVar("T")

# an experiment id no experiment has (ids start at 1): a search scoped to it finds nothing, in the search's own
# shape, when the caller may see no experiment at all (an empty list would mean every experiment)
NO_EXPERIMENT = "0"


def projects_of(request: Any) -> Projects:
    """The projects the caller of ``request`` may read (None: all of them)."""
    return visible_projects(identity_of(request))


def _db_url(request: Any) -> str:
    return request.app.state.settings.db_url  # type: ignore[no-any-return]


def experiments_for_search(request: Any, requested: list[str]) -> list[str]:
    """The experiment ids a run search of the caller runs over: the requested ones it may see (all it may see
    when none is requested), or ``[NO_EXPERIMENT]`` when that leaves none."""
    projects = projects_of(request)
    if projects is None:
        return requested
    with open_database(_db_url(request)).read() as conn:
        return visible_experiment_ids(conn, projects, requested) or [NO_EXPERIMENT]


def sql_model_visible(request: Any, name_column: Any) -> ColumnElement[bool] | None:
    """The condition a paged listing adds for rows naming their model in ``name_column`` (None: none)."""
    projects = projects_of(request)
    return None if projects is None else model_visible(name_column, projects)


def sql_run_visible(request: Any, run_id_column: Any) -> ColumnElement[bool] | None:
    """The condition a paged listing adds for rows naming their run in ``run_id_column`` (None: none)."""
    projects = projects_of(request)
    return None if projects is None else run_visible(run_id_column, projects)


def visible_models(request: Any, names: Iterable[str]) -> set[str] | None:
    """Which of the registered models ``names`` the caller may see (None: all)."""
    return _in_projects(request, names, model_projects)


def visible_runs(request: Any, run_ids: Iterable[str]) -> set[str] | None:
    """Which of ``run_ids`` the caller may see (None: all)."""
    return _in_projects(request, run_ids, run_projects)


def visible_alert_rule_names(request: Any) -> set[str] | None:
    """The alert rules the caller may see: those whose monitor watches a model it may see (None: all)."""
    projects = projects_of(request)
    if projects is None:
        return None
    with open_database(_db_url(request)).read() as conn:
        return visible_alert_rules(conn, projects)


def require_role(request: Any, kind: str, key: str, role: Role, what: str) -> None:
    """Refuse (403) unless the caller holds ``role`` in the project of resource ``kind`` ``key``: for the few
    resources found where the auth layer cannot look (a study by name, a logged model in the artifact store)."""
    identity = identity_of(request)
    if identity is None or identity.is_admin:
        return
    with open_database(_db_url(request)).read() as conn:
        project = project_of(conn, kind, key)
    held = identity.role_in(project)
    if held is None or held < role:
        has = "no role" if held is None else f"the role {held.label}"
        raise PermissionDeniedError(f"{what} needs the role {role.label} in project '{project}'; "
                                    f"'{identity.name}' has {has} there (`mloop auth grant`).")


def guard_rollout_tags(request: Any, name: str, keys: Iterable[str]) -> None:
    """Setting or clearing the tags that route a model's live traffic (``serving.shadow``, ``serving.canary``)
    is a promotion, so it needs a maintainer, as moving an alias does; other tags stay an editor's."""
    from mloop.serving.rollout import CANARY_TAG, SHADOW_TAG

    routing = sorted({SHADOW_TAG, CANARY_TAG}.intersection(keys))
    if routing:
        require_role(request, "model", name, Role.MAINTAINER,
                     f"Changing {', '.join(routing)} of model '{name}' (it sends live traffic to a version)")


def tagged_visible(request: Any, tags: dict[str, str]) -> bool:
    """Whether a resource with these tags (an experiment, a model) is in a project the caller may see."""
    projects = projects_of(request)
    return projects is None or (tags.get(PROJECT_TAG) or DEFAULT_PROJECT) in projects


def keep_visible(items: Iterable[T], key: Callable[[T], Any], visible: set[Any] | None) -> list[T]:
    """``items`` whose ``key`` is in ``visible`` (all of them for None): for listings that are not paged.

    >>> keep_visible([{"m": "a"}, {"m": "b"}], lambda i: i["m"], {"b"})
    [{'m': 'b'}]
    """
    return list(items) if visible is None else [i for i in items if key(i) in visible]


def _in_projects(request: Any, keys: Iterable[str], projects_by_key: Callable[[Any, list[str]], dict[str, str]]
                 ) -> set[str] | None:
    projects = projects_of(request)
    if projects is None:
        return None
    wanted = [k for k in keys if isinstance(k, str)]
    if not wanted:
        return set()
    with open_database(_db_url(request)).read() as conn:
        return {key for key, project in projects_by_key(conn, wanted).items() if project in projects}
