"""What a served model answers per row: its labels, its class probabilities, or both.

A request chooses with ``output`` ("label", "proba" or "both"): the ``?output=`` query parameter on
every route, ``params.output`` in a ``/predict`` or ``/invocations`` body (MLflow's predict params),
and ``parameters.output`` or the requested output names in an Open Inference Protocol body.
Without a choice the model's default applies (``log_model(..., predict_output=...)``, else labels).

>>> out = Outputs(labels=["no", "yes"], proba=[[0.9, 0.1], [0.2, 0.8]], classes=["no", "yes"])
>>> out[1:].labels, out[1:].proba, len(out)
(['yes'], [[0.2, 0.8]], 2)
>>> body_fields(Outputs(labels=None, proba=[[0.9, 0.1]], classes=["no", "yes"]))
{'predictions': [[0.9, 0.1]], 'classes': ['no', 'yes']}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mloop.registry._proba import OUTPUTS
from mloop.serving._payload import PayloadError

__all__ = ["LABEL_TENSOR", "OUTPUTS", "PROBA_TENSOR", "Outputs", "body_fields", "requested_output", "v2_outputs",
           "v2_requested"]

PROBA_TENSOR = "probabilities"  # the Open Inference Protocol output that carries class probabilities
LABEL_TENSOR = "predictions"


@dataclass(frozen=True, slots=True)
class Outputs:
    """One answer for some rows; sliceable by rows (a micro-batch hands each request its share)."""

    labels: list[Any] | None
    proba: list[list[float]] | None = None
    classes: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.labels if self.labels is not None else self.proba or [])

    def __getitem__(self, rows: slice) -> Outputs:
        return Outputs(self.labels[rows] if self.labels is not None else None,
                       self.proba[rows] if self.proba is not None else None, self.classes)

    def label_rows(self) -> list[Any]:
        """A label per row: the answered ones, else the most probable class (what the prediction log keeps)."""
        if self.labels is not None:
            return self.labels
        if not self.proba or not self.classes:
            return [None] * len(self.proba or [])
        return np.asarray(self.classes, dtype=object)[np.argmax(self.proba, axis=1)].tolist()


def requested_output(value: Any, field: str) -> str | None:
    """A request's ``output`` choice, checked (None when the request does not choose)."""
    if value is None:
        return None
    if value not in OUTPUTS:
        shown = repr(value) if isinstance(value, str | int | float | bool) else type(value).__name__
        raise PayloadError(f"{field} is {shown[:60]}; expected one of {list(OUTPUTS)} (label: the class or value, "
                           "proba: class probabilities, both: the two side by side)", field=field)
    return str(value)


def body_fields(out: Outputs) -> dict[str, Any]:
    """The JSON fields of an answer: ``predictions`` (labels, or probability rows for "proba") and, when
    probabilities are in it, ``classes`` (the label of each probability) and for "both" ``probabilities``."""
    if out.proba is None:
        return {"predictions": out.labels}
    if out.labels is None:
        return {"predictions": out.proba, "classes": out.classes}
    return {"predictions": out.labels, "probabilities": out.proba, "classes": out.classes}


def v2_outputs(out: Outputs) -> list[dict[str, Any]]:
    """Open Inference Protocol output tensors: ``predictions`` (labels) and/or ``probabilities`` [rows, classes]."""
    tensors = []
    if out.labels is not None:
        first = out.labels[0] if out.labels else None
        datatype = "BOOL" if isinstance(first, bool) else "INT64" if isinstance(first, int) else \
            "FP64" if isinstance(first, float) else "BYTES"
        tensors.append({"name": LABEL_TENSOR, "shape": [len(out.labels)], "datatype": datatype, "data": out.labels})
    if out.proba is not None:
        flat = [p for row in out.proba for p in row]
        tensors.append({"name": PROBA_TENSOR, "shape": [len(out.proba), len(out.classes or [])], "datatype": "FP64",
                        "data": flat, "parameters": {"classes": out.classes}})
    return tensors


def v2_requested(body: Any) -> str | None:
    """The output an Open Inference Protocol body asks for: ``parameters.output``, else its ``outputs`` names."""
    if not isinstance(body, dict):
        return None
    parameters = body.get("parameters")
    if isinstance(parameters, dict) and parameters.get("output") is not None:
        return requested_output(parameters["output"], "parameters.output")
    wanted = body.get("outputs")
    if wanted is None:
        return None
    if not isinstance(wanted, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                               for o in wanted):
        raise PayloadError("outputs must be a list of {\"name\": ...}", field="outputs")
    names = {o["name"] for o in wanted}
    unknown = sorted(names - {LABEL_TENSOR, PROBA_TENSOR})
    if unknown:
        raise PayloadError(f"unknown output {unknown[0]!r}; this server answers {[LABEL_TENSOR, PROBA_TENSOR]}",
                           field="outputs")
    if names == {PROBA_TENSOR}:
        return "proba"
    return "both" if PROBA_TENSOR in names else "label"
