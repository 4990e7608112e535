"""The SDK reads a version's analysis only from where it is stored, never from wherever an edited tag points."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop
from mloop.analysis import model_analysis
from mloop.analysis.store import ANALYSIS_TAG
from mloop.errors import NotFoundError


def test_a_tag_pointing_at_another_runs_file_is_not_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = (X["a"] > 0).astype(int)
    with mloop.start_run(experiment="secrets") as other:
        secret = tmp_path / "analysis.json"
        # shaped like an analysis, so only the location check can refuse it
        secret.write_text(json.dumps({"task": "classification", "note": "do-not-show-this"}))
        other.log_artifact(str(secret))
    with mloop.start_run(experiment="models") as run:
        version = run.log_model(LogisticRegression().fit(X, y), name="located", input_example=X.head(5))
    registry = mloop.model_registry()
    stolen = f"runs/{other.run_id}/artifacts/analysis.json"
    registry.update_version("located", version.version, tags={ANALYSIS_TAG: stolen})
    with pytest.raises(NotFoundError) as caught:
        model_analysis("located", version.version)
    assert caught.value.field == ANALYSIS_TAG and "not where its analysis is stored" in str(caught.value)
    assert "do-not-show-this" not in str(caught.value)
