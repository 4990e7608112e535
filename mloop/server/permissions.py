"""What each endpoint of ``mloop server`` needs, declared as one table of rules over method and path.

The first rule whose pattern matches the request path (from its start) decides. A route that no rule covers is
refused (fail closed), and tests/auth/test_permissions.py walks every route of the app so that a new router
cannot ship undeclared: a new router adds one line here, not a dependency on each of its handlers.

>>> permission_for("GET", "/api/runs/abc").role, permission_for("PUT", "/api/registry/models/m/aliases/c").role
(<Role.VIEWER: 1>, <Role.MAINTAINER: 3>)
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from mloop.auth.roles import Role

__all__ = ["ANYONE", "LISTED", "PUBLIC", "RULES", "Need", "Rule", "permission_for"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Need:
    """A role in the request's project, or over the whole server (``server_wide``); ``role`` None: any identity.

    ``listing``: the layer lets any identity through, and the handler applies ``role`` per project
    (mloop.server.visibility): a list or search shows only what is in the projects where the caller holds it,
    and the few handlers that find their resource where the layer does not look (a study by name, an MLflow
    logged model in the artifact store) check the role in its project themselves.
    """

    role: Role | None
    server_wide: bool = False
    public: bool = False
    listing: bool = False


PUBLIC = Need(None, public=True)
ANYONE = Need(None)  # any authenticated identity
VIEWER, EDITOR, MAINTAINER = Need(Role.VIEWER), Need(Role.EDITOR), Need(Role.MAINTAINER)
SERVER_ADMIN = Need(Role.ADMIN, server_wide=True)
LISTED = Need(Role.VIEWER, listing=True)  # filtered to the caller's projects
EDITED_IN_HANDLER = Need(Role.EDITOR, listing=True)  # the handler checks editor in its resource's project


@dataclass(frozen=True, slots=True)
class Rule:
    """Requests whose path matches ``pattern`` need ``reads`` for GET/HEAD and ``writes`` for other methods."""

    pattern: str
    reads: Need
    writes: Need

    def matches(self, path: str) -> bool:
        return _compiled(self.pattern).match(path) is not None


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern + r"(/|$)")


def _same(pattern: str, need: Need) -> Rule:
    return Rule(pattern, need, need)


_MLFLOW = r"/(ajax-)?api/2\.0/mlflow"
RULES: tuple[Rule, ...] = (
    _same(r"/(health|openapi\.json|docs|redoc|docs/static)", PUBLIC),
    # the web UI's shell and assets are static: each page reads the API with the person's token
    _same(r"/", PUBLIC),
    _same(r"/ui/(static|vendor)", PUBLIC),
    _same(r"/(experiments|runs|compare|models|features|flows|quality|login|monitoring|studies|automation)", PUBLIC),
    _same(r"/api/auth/(login|logout)", PUBLIC),  # signing in is how a browser gets an identity
    _same(r"/api/auth/whoami", ANYONE),
    _same(r"/api/auth/users", SERVER_ADMIN),
    # server-wide: users, deleting for good, and webhooks (they send every event, and carry secrets)
    _same(r"/api/gc", SERVER_ADMIN),
    _same(r"/api/registry/webhooks", SERVER_ADMIN),
    # what moves a model into use needs a maintainer: aliases, environments, approvals, rules that promote
    Rule(r"/api/registry/models/[^/]+/aliases", VIEWER, MAINTAINER),
    # pending requests and deployment history, of the caller's projects
    Rule(r"/api/registry/(approvals|environments/[^/]+/history)$", LISTED, MAINTAINER),
    Rule(r"/api/registry/(environments|approvals|rules|select)", VIEWER, MAINTAINER),
    Rule(_MLFLOW + r"/(registered-models/alias|model-versions/transition-stage)", VIEWER, MAINTAINER),
    Rule(r"/api/automation/rules/[^/]+/(pause|resume)$", VIEWER, MAINTAINER),
    # listings and searches: open to every identity, each shows only the projects where it is a viewer
    _same(r"/api/runs/(search|page)$", LISTED),
    _same(_MLFLOW + r"/[a-z-]+/search", LISTED),
    Rule(r"/api/(experiments|monitors|registry/models)$", LISTED, EDITOR),
    Rule(r"/api/(alerts|alerts/history|registry/audit|automation/rules|automation/firings"
         r"|flows/runs|tuning/studies|datasets/[^/]+/runs|registry/datasets/[^/]+/versions)$", LISTED, EDITOR),
    # resources the layer cannot place in a project: their handlers check (mloop.server.visibility.require_role)
    _same(r"/api/tuning/studies/.+", LISTED),
    Rule(_MLFLOW + r"/logged-models/(?!search$)[^/]+", LISTED, EDITED_IN_HANDLER),
    # reads that take their question in a POST body
    _same(r"/api/(runs/search|runs/page|features/(online|training-set|definitions/plan)|flows/artifact-refs)",
          VIEWER),
    # what a flow's orchestrator and tasks write through the server (flow_records, flow_cas): an editor's
    Rule(r"/api/flows/(experiments|runs|heartbeat|records|rows|names|tasks|cache|schedules|cas)", VIEWER, EDITOR),
    # everything else of each router: read with viewer, write with editor
    Rule(r"/api/(experiments|runs|metrics|heartbeat|datasets|registry|features|monitors|alerts|flows|quality|tuning"
         r"|automation)", VIEWER, EDITOR),
    Rule(_MLFLOW + r"(-artifacts)?", VIEWER, EDITOR),
)


def permission_for(method: str, path: str) -> Need | None:
    """What a ``method`` request on ``path`` needs (None: undeclared, so refused)."""
    for rule in RULES:
        if rule.matches(path):
            return rule.reads if method.upper() in _READS else rule.writes
    return None
