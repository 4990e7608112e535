"""What the prediction log says about a challenger in live traffic since a moment: as a shadow (its answers to
the copied requests beside the champion's: agreement, latency, requests it did not answer) and as a canary (its
own share of the traffic beside the champion's: server errors, latency and, once labels arrive, the metric).

Reading the log rather than asking a server makes the figures the same for every worker of every server.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mloop.config import Settings

__all__ = ["canary_figures", "shadow_figures"]

GRACE_MS = 3_000  # a copied request younger than this may still be on its way to the log


def _rows(settings: Settings, model: str, since: int, until: int) -> pd.DataFrame:
    from mloop.monitoring import _log
    from mloop.store.blob import open_blob_store

    blobs = open_blob_store(settings.artifact_root)
    return _log.rows_since(blobs, model, since, until)


def _requests(rows: pd.DataFrame) -> int:
    return int(rows["id"].str.rsplit("-", n=1).str[0].nunique()) if len(rows) else 0


def _p50(values: pd.Series) -> float | None:
    return round(float(np.median(values.astype(float))), 3) if len(values) else None


def _agree(champion: pd.Series, challenger: pd.Series, tolerance: float) -> tuple[np.ndarray, float | None]:
    from mloop.monitoring._log import decode

    ours, theirs = decode(champion.reset_index(drop=True)), decode(challenger.reset_index(drop=True))
    if ours.dtype.kind == "f" and theirs.dtype.kind == "f":
        diff = np.abs(ours.to_numpy() - theirs.to_numpy())
        return diff <= 1e-9 + tolerance * np.abs(ours.to_numpy()), float(np.nanmean(diff)) if len(diff) else None
    return (ours.astype(str) == theirs.astype(str)).to_numpy(), None


def shadow_figures(settings: Settings, model: str, version: int, since: int, now: int,
                   tolerance: float = 0.01) -> dict[str, Any]:
    """The shadow ``version``'s answers since ``since`` (epoch ms) beside the primary's to the same requests."""
    rows = _rows(settings, model, since, now + 1)
    shadow = rows[(rows["role"] == "shadow") & (rows["version"] == str(version))]
    primary = rows[rows["role"] == "primary"]
    pairs = shadow.merge(primary, on="id", suffixes=("_shadow", "_primary"))
    agree, diff = _agree(pairs["output_primary"], pairs["output_shadow"], tolerance)
    started = int(shadow["time"].min()) if len(shadow) else now  # the log's times are epoch ms
    due = primary[(primary["time"] >= started) & (primary["time"] <= now - GRACE_MS)]
    unanswered = _requests(due[~due["id"].isin(shadow["id"])])
    answered = _requests(pairs)
    return {"requests": answered, "rows": len(pairs),
            "agreement": round(float(agree.mean()), 4) if len(agree) else None, "mean_abs_diff": diff,
            "unanswered": unanswered,
            "error_rate": round(unanswered / (answered + unanswered), 4) if answered + unanswered else 0.0,
            "latency_ms": {"champion_p50": _p50(pairs["latency_ms_primary"]),
                           "challenger_p50": _p50(pairs["latency_ms_shadow"])}}


def _errors(settings: Settings, model: str, since: int, until: int) -> pd.DataFrame:
    from mloop.monitoring import _log
    from mloop.store.blob import open_blob_store

    blobs = open_blob_store(settings.artifact_root)
    found = _log.read_errors(blobs, [k for _, k in _log.error_files(blobs, since)], model, since, until)
    return found[found["status"] >= 500]


def _labelled(settings: Settings, rows: pd.DataFrame) -> pd.DataFrame:
    from mloop.monitoring import _log
    from mloop.store.blob import open_blob_store

    if rows.empty:
        return rows.assign(label=pd.Series(dtype=object))
    labels = _log.read_labels(open_blob_store(settings.artifact_root),
                              _log.feedback_files(open_blob_store(settings.artifact_root), ""))
    return rows.merge(labels, on="id", how="inner")


def canary_figures(settings: Settings, model: str, champion: int, canary: int, since: int, now: int,
                   metric: str | None = None) -> dict[str, Any]:
    """Each arm's requests, server errors, error rate, median latency and (with ``metric``, once labels came
    back) the metric on its own labelled rows, since ``since``."""
    from mloop.automation.gate import score
    from mloop.monitoring._log import decode

    rows = _rows(settings, model, since, now + 1)
    errors = _errors(settings, model, since, now + 1)
    arms = {"champion": (rows[(rows["role"] == "primary") & (rows["version"] == str(champion))],
                         errors[(errors["role"] == "primary") & (errors["version"] == str(champion))]),
            "challenger": (rows[(rows["role"] == "canary") & (rows["version"] == str(canary))],
                           errors[(errors["role"] == "canary") & (errors["version"] == str(canary))])}
    figures: dict[str, Any] = {}
    for arm, (answered, failed) in arms.items():
        requests = _requests(answered) + len(failed)
        entry: dict[str, Any] = {"requests": requests, "errors": len(failed),
                                 "error_rate": round(len(failed) / requests, 4) if requests else 0.0,
                                 "latency_p50_ms": _p50(answered["latency_ms"])}
        if metric is not None:
            labelled = _labelled(settings, answered)
            entry["labelled"] = len(labelled)
            if len(labelled):
                entry[metric] = round(score(metric, decode(labelled["label"]).to_numpy(),
                                            decode(labelled["output"]).to_numpy()), 6)
        figures[arm] = entry
    return figures
