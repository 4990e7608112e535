"""The server application factory.

Each capability contributes one router module under ``mloop/server/api``;
``create_app`` mounts them all on one FastAPI app with shared error handling.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from mloop import __version__
from mloop._util.asgi import BodyRule, protect
from mloop._util.openapi import declare_errors, docs_routes
from mloop.config import Settings
from mloop.server.errors import install_error_handlers

# Bodies that are not size-limited JSON: an artifact upload streams any bytes (its route bounds the size itself).
EDGE_RULES = (BodyRule(r"/api/runs/[^/]+/artifacts/", methods=frozenset({"PUT"}), media_types=None, limited=False),
              # MLflow's artifact proxy: a file upload or one part of a multipart upload, bounded by its route
              BodyRule(r"/api/2\.0/mlflow-artifacts/(artifacts|mpu/parts)/", methods=frozenset({"PUT"}),
                       media_types=None, limited=False),
              # one chunk of a flow artifact's bytes, bounded by its route
              BodyRule(r"/api/flows/cas/", methods=frozenset({"PUT"}), media_types=None, limited=False),
              # a training set's entity rows arrive as Parquet, within the general request limit (every method
              # passes the edge, so that one the route lacks gets its 405)
              BodyRule(r"/api/features/training-set$", media_types=frozenset({"application/vnd.apache.parquet"})))

# one file of a model folder registered through the server, bounded by its route like an artifact
EDGE_RULES += (BodyRule(r"/api/registry/uploads/", methods=frozenset({"PUT"}), media_types=None, limited=False),)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the REST API over the stores described by ``settings``."""
    settings = settings or Settings.load()
    if settings.remote:
        settings = dataclasses.replace(settings, tracking_uri="")  # the server reaches the stores directly
    # FastAPI's own /docs and /redoc load their scripts from a CDN: ours come from an installed package.
    app = FastAPI(title="mloop", version=__version__, docs_url=None, redoc_url=None, lifespan=_deliver_events)
    app.state.settings = settings
    install_error_handlers(app)
    if settings.auth:  # added before the edge, so the edge (hosts, sizes, CORS preflights) runs first
        from mloop.server.auth import install_auth

        install_auth(app, settings.db_url)
    protect(app, settings, EDGE_RULES)

    @app.get("/health", tags=["server"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    from mloop.server import auth

    app.include_router(auth.router, prefix="/api")
    from mloop.server import sessions

    app.include_router(sessions.router, prefix="/api")
    from mloop.server.api import users

    app.include_router(users.router, prefix="/api")
    from mloop.server.api import tracking

    app.include_router(tracking.router, prefix="/api")
    from mloop.server.api import browse

    app.include_router(browse.router, prefix="/api")
    from mloop.server.api import registry

    app.include_router(registry.router, prefix="/api")
    from mloop.server.api import registry_remote

    app.include_router(registry_remote.router, prefix="/api")
    from mloop.server.api import features

    app.include_router(features.router, prefix="/api")
    from mloop.server.api import monitoring

    app.include_router(monitoring.router, prefix="/api")
    from mloop.server.api import tuning

    app.include_router(tuning.router, prefix="/api")
    from mloop.server.api import flow_cas, flow_records, flows

    app.include_router(flows.router, prefix="/api")
    app.include_router(flow_records.router, prefix="/api")
    app.include_router(flow_cas.router, prefix="/api")
    from mloop.server.api import quality

    app.include_router(quality.router, prefix="/api")
    from mloop.server.api import analysis

    app.include_router(analysis.router, prefix="/api")
    from mloop.server.api import automation

    app.include_router(automation.router, prefix="/api")
    from mloop.server import mlflow

    for prefix, mlflow_router in mlflow.routers():
        app.include_router(mlflow_router, prefix=prefix, include_in_schema=prefix == mlflow.MLFLOW_PREFIXES[0])
    app.router.routes.extend(docs_routes("mloop API"))
    from mloop.ui._routes import ui_routes

    app.router.routes.extend(ui_routes())  # the web pages, after every API route
    _declare_errors_in_openapi(app)
    return app


@asynccontextmanager
async def _deliver_events(app: FastAPI) -> AsyncIterator[None]:
    """While the server runs, a worker delivers the event outbox (beside any other server or `mloop events deliver`)
    and the monitors run every ``monitor_every_seconds``; webhook secrets stored unsealed are sealed first."""
    from mloop.events.worker import DeliveryWorker
    from mloop.monitoring.schedule import MonitorLoop
    from mloop.registry import registry_for

    registry_for(app.state.settings).webhooks.seal_stored()  # secrets stored before sealing existed
    halt = DeliveryWorker(app.state.settings).start()
    monitors = MonitorLoop(app.state.settings).start()
    yield
    monitors()
    halt()


def _declare_errors_in_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare the error statuses the edges of the app answer on every operation, with
    integer bounds written as integers."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_errors(_integer_bounds(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _integer_bounds(node: Any) -> Any:
    """``node`` with the bounds of every integer schema as JSON integers again.

    FastAPI's document model reads ``minimum`` and ``maximum`` as floats, so 2147483647 became 2147483647.0,
    which a client may read as a float bound. Bounds are chosen to be exact as floats (see ``integer``).
    """
    if isinstance(node, list):
        return [_integer_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    fixed = {key: _integer_bounds(value) for key, value in node.items()}
    if fixed.get("type") == "integer":
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if isinstance(fixed.get(key), float) and fixed[key].is_integer():
                fixed[key] = int(fixed[key])
    return fixed
