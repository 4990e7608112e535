"""How the pages are served: one HTML shell for every page path, the app's assets, and Plotly's bundle.

The shell holds no inline script: it loads ``app.js`` as a module, which reads the path and renders the page.
The Content-Security-Policy lets only this server's scripts run and lets the page talk only to this server.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mloop import __version__
from mloop.errors import MissingDependencyError

ASSETS = Path(__file__).parent / "assets"
STATIC_PREFIX = "/ui/static"
PLOTLY_PATH = "/ui/vendor/plotly.min.js"

# The first segment of every page path the shell answers; anything else stays the API's 404 (an API path
# mistyped must not come back as a page, nor a POST to it as a 405). Pages added later (models, features,
# flows, quality) only need their module in assets/pages and an entry in app.js's PAGES.
PAGE_ROOTS = frozenset({"experiments", "runs", "compare", "models", "features", "flows", "quality", "login",
                        "monitoring", "studies", "automation"})

# Plotly sets styles inline, so styles may be inline; scripts may not. Frames show only this server's previews
# (which carry their own sandbox policy). Nothing is fetched from another host.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
          "font-src 'self' data:; connect-src 'self'; frame-src 'self'; worker-src 'self' blob:; "
          "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")

_SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mloop</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{static}/ui.css?v={version}">
<script src="{root}{plotly}" defer></script>
<script type="module" src="{static}/app.js?v={version}"></script>
</head><body data-root="{root}" data-version="{version}">
<header class="top"><a class="brand" href="{root}/">mloop</a><nav id="nav"></nav><span id="who"></span></header>
<main id="page"><p class="muted">Loading...</p></main>
<noscript>The mloop UI needs JavaScript; the REST API is documented at <a href="{root}/docs">/docs</a>.</noscript>
</body></html>"""


def _shell(request: Request) -> Response:
    root = html.escape(request.scope.get("root_path", "").rstrip("/"))
    body = _SHELL.format(root=root, static=root + STATIC_PREFIX, plotly=PLOTLY_PATH,
                         version=html.escape(__version__))
    return HTMLResponse(body, headers={"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
                                       "Referrer-Policy": "same-origin", "Cache-Control": "no-cache"})


def _plotly_file() -> Path:
    spec = importlib.util.find_spec("plotly")  # found, not imported: the server never needs Plotly's Python side
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("The package 'plotly' ships the charts of the web UI and is not installed; "
                                     "install it with: pip install plotly")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


def _plotly(request: Request) -> Response:
    return FileResponse(_plotly_file(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


def ui_routes() -> list[BaseRoute]:
    """The shell at ``/`` and every page path, ``/ui/static/*`` and Plotly; mount them after the API routes.

    >>> [r.path for r in ui_routes()][:2]
    ['/', '/ui/vendor/plotly.min.js']
    """
    _plotly_file()  # a missing Plotly fails when the server starts, not on the first chart
    pages = [Route(path, _shell, methods=["GET"], include_in_schema=False)
             for root in sorted(PAGE_ROOTS) for path in (f"/{root}", f"/{root}/{{rest:path}}")]
    return [Route("/", _shell, methods=["GET"], include_in_schema=False),
            Route(PLOTLY_PATH, _plotly, methods=["GET"], include_in_schema=False),
            Mount(STATIC_PREFIX, StaticFiles(directory=ASSETS), name="ui-static"), *pages]
