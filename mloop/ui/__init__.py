"""The web UI: pages in the browser over the same REST API the SDK uses.

``mloop server`` serves it at ``/``: one HTML shell for every page path (``/experiments/1``, ``/runs/<id>``,
``/compare?runs=a,b``), so each page has a URL that can be shared, and a small client-side app in plain
JavaScript modules (no build step) that fetches JSON from ``/api`` and renders it. Every script, style sheet and
chart library comes from this package or an installed one (Plotly); nothing is loaded from the internet.
"""

from mloop.ui._links import analysis_url, compare_url, experiment_url, model_version_url, run_url, study_url, ui_base

# The routes (mloop.ui._routes.ui_routes) are imported by the server only: the CLI prints links without Starlette.
__all__ = ["analysis_url", "compare_url", "experiment_url", "model_version_url", "run_url", "study_url", "ui_base"]
