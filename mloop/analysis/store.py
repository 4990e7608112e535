"""An analysis stored with its model version, where promotion gates can read it.

The JSON and the HTML report go beside the version's training schema and profile (under its run,
``analysis/analysis.json`` and ``analysis/report.html``); the version tags ``mloop.analysis`` and
``mloop.analysis.html`` say where, and ``mloop.analysis.summary`` carries the flat numbers (one JSON object, so
a new analysis replaces all of the old one's) that a selection rule names as ``analysis.<key>``.
"""

from __future__ import annotations

import json
from typing import Any

from mloop.analysis.result import Analysis
from mloop.errors import NotFoundError

__all__ = ["ANALYSIS_TAG", "HTML_TAG", "SUMMARY_TAG", "analysis_key", "attach_analysis", "model_analysis",
           "stored_analysis"]

ANALYSIS_TAG, HTML_TAG, SUMMARY_TAG = "mloop.analysis", "mloop.analysis.html", "mloop.analysis.summary"
MAX_SUMMARY_CHARS = 8000  # a version tag's limit: per-feature keys are dropped first if the summary is longer


def registry_or_default(registry: Any) -> Any:
    """``registry``, or the SDK's (the stores ``mloop.configure`` or the environment chose)."""
    from mloop._sdk import model_registry

    return registry if registry is not None else model_registry()


def analysis_key(version: Any, filename: str) -> str:
    """Where ``filename`` of a version's analysis is stored: beside the version's training schema, under its run,
    or next to a folder-registered model's files. Readers check a tag against it, since tags can be edited."""
    base = f"runs/{version.run_id}/artifacts" if version.run_id else version.storage.rstrip("/") + "-"
    return f"{base}{'/' if version.run_id else ''}analysis/{filename}"


def summary_tag(summary: dict[str, float]) -> str:
    """The summary as compact JSON within a tag's size (per-feature entries go first when too long).

    >>> summary_tag({"accuracy": 0.9, "equalized_odds_difference:sex": 0.1})
    '{"accuracy":0.9,"equalized_odds_difference:sex":0.1}'
    """
    text = json.dumps(summary, separators=(",", ":"))
    if len(text) > MAX_SUMMARY_CHARS:
        text = json.dumps({k: v for k, v in summary.items() if ":" not in k or k.startswith("worst_slice_gap")},
                          separators=(",", ":"))
    return text


def attach_analysis(analysis: Analysis, name: str, version: int, registry: Any = None) -> Any:
    """Store ``analysis`` (JSON + HTML report) with version ``version`` of model ``name``; returns the version.

    A rule can then gate on it, e.g. ``when: analysis.equalized_odds_difference < 0.1``.
    """
    registry = registry_or_default(registry)
    mv = registry.get_version(name, version)
    json_key, html_key = analysis_key(mv, "analysis.json"), analysis_key(mv, "report.html")
    registry.blobs.put_bytes(json_key, analysis.to_json().encode())
    registry.blobs.put_bytes(html_key, analysis.to_html(title=f"Model analysis: {name} v{mv.version}").encode())
    tags = {ANALYSIS_TAG: json_key, HTML_TAG: html_key, SUMMARY_TAG: summary_tag(analysis.summary)}
    return registry.update_version(name, mv.version, tags=tags)


def stored_analysis(name: str, version: int, filename: str, registry: Any = None) -> bytes:
    """The bytes of a version's ``analysis.json`` or ``report.html``, read only from where ``attach_analysis``
    writes them: the tags that point at them can be edited by anyone who may tag a version, so a tag must not
    choose which blob is read (it could name another model's files, or anything else in the store)."""
    registry = registry_or_default(registry)
    mv = registry.get_version(name, version)
    tag = ANALYSIS_TAG if filename == "analysis.json" else HTML_TAG
    key = mv.tags.get(tag)
    if key is None:
        raise NotFoundError(f"Model {name} v{version} has no analysis; run mloop.analyze('models:/{name}/{version}',"
                            f" data, label=...), or attach_analysis(result, '{name}', {version}).", field=tag)
    if key != analysis_key(mv, filename):
        raise NotFoundError(f"Model {name} v{version}'s tag {tag} is {key!r}, not where its analysis is stored "
                            f"({analysis_key(mv, filename)!r}); run mloop.analyze on it again.", field=tag)
    return registry.blobs.get_bytes(key)


def model_analysis(name: str, version: int, registry: Any = None) -> Analysis:
    """The analysis last attached to a model version."""
    return Analysis.from_dict(json.loads(stored_analysis(name, version, "analysis.json", registry)))
