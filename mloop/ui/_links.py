"""Stable URLs of the UI's pages, for the CLI and the demo to print beside the ids they show."""

from __future__ import annotations

from urllib.parse import quote

from mloop.config import Settings


def ui_base(settings: Settings) -> str | None:
    """The UI's root URL when ``settings`` point at an mloop server, else None (local stores have no pages).

    >>> ui_base(Settings.load(tracking_uri="http://127.0.0.1:5000/"))
    'http://127.0.0.1:5000'
    """
    uri = settings.tracking_uri or ""
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


def run_url(base: str, run_id: str) -> str:
    """The page of one run.

    >>> run_url("http://127.0.0.1:5000", "ab12")
    'http://127.0.0.1:5000/runs/ab12'
    """
    return f"{base}/runs/{quote(run_id, safe='')}"


def experiment_url(base: str, experiment_id: str, filter: str = "", order: str = "") -> str:
    """The runs table of one experiment, optionally filtered and ordered.

    >>> experiment_url("http://127.0.0.1:5000", "3", "metrics.rmse < 4", "metrics.rmse ASC")
    'http://127.0.0.1:5000/experiments/3?filter=metrics.rmse%20%3C%204&order=metrics.rmse%20ASC'
    """
    query = "&".join(f"{name}={quote(value, safe='')}" for name, value in (("filter", filter), ("order", order))
                     if value)
    return f"{base}/experiments/{quote(experiment_id, safe='')}" + (f"?{query}" if query else "")


def compare_url(base: str, run_ids: list[str]) -> str:
    """The compare page of several runs.

    >>> compare_url("http://127.0.0.1:5000", ["ab", "cd"])
    'http://127.0.0.1:5000/compare?runs=ab,cd'
    """
    return f"{base}/compare?runs=" + ",".join(quote(r, safe="") for r in run_ids)


def model_version_url(base: str, name: str, version: int) -> str:
    """The page of one model version.

    >>> model_version_url("http://127.0.0.1:5000", "eta", 3)
    'http://127.0.0.1:5000/models/eta/versions/3'
    """
    return f"{base}/models/{quote(name, safe='')}/versions/{int(version)}"
def study_url(base: str, study: str) -> str:
    """The page of one hyperparameter study (``mloop.tune``).

    >>> study_url("http://127.0.0.1:5000", "ridge search")
    'http://127.0.0.1:5000/studies/ridge%20search'
    """
    return f"{base}/studies/{quote(study, safe='')}"


def analysis_url(base: str, model: str, version: int | str) -> str:
    """The analysis page of one model version (``mloop.analyze``).

    >>> analysis_url("http://127.0.0.1:5000", "eta-model", 3)
    'http://127.0.0.1:5000/models/eta-model/versions/3/analysis'
    """
    return f"{base}/models/{quote(model, safe='')}/versions/{quote(str(version), safe='')}/analysis"
