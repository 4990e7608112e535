"""``mloop server``: the REST API over every capability (FastAPI + uvicorn)."""

from mloop.server.app import create_app

__all__ = ["create_app"]
