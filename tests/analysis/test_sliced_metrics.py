"""Sliced metrics equal scikit-learn's on the same rows; intervals widen on tiny slices; nulls are a slice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mloop
from mloop.analysis.slices import MISSING


def _by_slice(analysis, name: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {s["value"]: s for s in analysis.slices if s["slice"] == name}


@pytest.fixture(scope="module")
def cancer() -> tuple[object, pd.DataFrame]:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": "malignant"})
    features = list(data.feature_names)
    rng = np.random.default_rng(1)
    frame["clinic"] = pd.Series(rng.choice(["north", "south", "east"], len(frame)), dtype="category")
    frame.loc[rng.random(len(frame)) < 0.12, "clinic"] = None  # 12% unknown clinic
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=500))
    model.fit(frame[features].iloc[::2], frame["malignant"].iloc[::2])
    return model, frame.iloc[1::2].reset_index(drop=True)


def test_classification_slices_equal_sklearn(cancer) -> None:  # type: ignore[no-untyped-def]
    model, frame = cancer
    result = mloop.analyze(model, frame, label="malignant", slices=["clinic", "mean radius"])
    y = frame["malignant"].to_numpy()
    pred = model.predict(frame[model.feature_names_in_])
    score = model.predict_proba(frame[model.feature_names_in_])[:, 1]
    masks = {v: (frame["clinic"] == v).to_numpy() for v in ["north", "south", "east"]}
    masks[MISSING] = frame["clinic"].isna().to_numpy()
    clinic = _by_slice(result, "clinic")
    assert set(clinic) == set(masks)
    for value, mask in masks.items():
        got = clinic[value]
        assert got["count"] == mask.sum()
        assert got["metrics"]["accuracy"]["value"] == pytest.approx(accuracy_score(y[mask], pred[mask]))
        assert got["metrics"]["f1"]["value"] == pytest.approx(f1_score(y[mask], pred[mask]))
        assert got["metrics"]["auc"]["value"] == pytest.approx(roc_auc_score(y[mask], score[mask]))
        low, high = got["metrics"]["accuracy"]["low"], got["metrics"]["accuracy"]["high"]
        assert low <= got["metrics"]["accuracy"]["value"] <= high
    # a numeric column is cut into 4 quantile bins, each checked against the same rows
    bins = pd.qcut(frame["mean radius"], 4, labels=False)
    radius = sorted(_by_slice(result, "mean radius").values(),
                    key=lambda s: float(s["value"].strip("[]").split(",")[0]))
    assert len(radius) == 4
    for code, got in enumerate(radius):
        mask = (bins == code).to_numpy()
        assert got["count"] == mask.sum()
        assert got["metrics"]["auc"]["value"] == pytest.approx(roc_auc_score(y[mask], score[mask]))
    overall = result.overall["metrics"]
    assert overall["accuracy"]["value"] == pytest.approx(accuracy_score(y, pred))
    assert np.array(result.confusion["matrix"]).sum() == len(frame)
    assert sum(b["count"] for b in result.calibration) == len(frame)


def test_regression_slices_and_residuals_equal_sklearn() -> None:
    data = load_diabetes(as_frame=True, scaled=False)
    frame = data.frame
    model = Ridge(alpha=1.0).fit(frame[data.feature_names].iloc[:300], frame["target"].iloc[:300])
    test = frame.iloc[300:].reset_index(drop=True)
    result = mloop.analyze(model, test, label="target", slices=["sex", ("sex", "bmi")])
    assert result.task == "regression" and result.primary_metric == "rmse"
    pred = model.predict(test[data.feature_names])
    y = test["target"].to_numpy()
    for value, got in _by_slice(result, "sex").items():
        mask = (test["sex"].astype(str) == value).to_numpy()
        assert got["count"] == mask.sum()
        assert got["metrics"]["mae"]["value"] == pytest.approx(mean_absolute_error(y[mask], pred[mask]))
        rmse = np.sqrt(mean_squared_error(y[mask], pred[mask]))
        assert got["metrics"]["rmse"]["value"] == pytest.approx(rmse)
        assert got["metrics"]["rmse"]["low"] < rmse < got["metrics"]["rmse"]["high"]
        assert got["residual_mean"] == pytest.approx(float(np.mean(pred[mask] - y[mask])))
    crossed = _by_slice(result, "sex x bmi")
    assert sum(s["count"] for s in crossed.values()) == len(test) and len(crossed) == 8
    assert result.fairness == {} and result.confusion is None


def test_tiny_slices_carry_wide_intervals_and_do_not_set_the_gap() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    frame = pd.DataFrame({"x": rng.normal(size=n), "site": np.where(np.arange(n) < 6, "tiny", "big")})
    frame["y"] = (frame["x"] > 0).astype(int)
    frame.loc[:5, "y"] = 1 - frame.loc[:5, "y"]  # the tiny site's six rows are all mislabelled
    model = LogisticRegression().fit(frame[["x"]], (frame["x"] > 0).astype(int))
    result = mloop.analyze(model, frame, label="y", slices=["site"])
    site = _by_slice(result, "site")
    tiny, big = site["tiny"]["metrics"]["accuracy"], site["big"]["metrics"]["accuracy"]
    assert tiny["value"] == 0.0 and tiny["high"] - tiny["low"] > 0.35
    assert big["high"] - big["low"] < 0.02
    assert result.ci_methods["accuracy"] == "wilson"
    assert result.summary["worst_slice_gap"] < 0.01  # six rows are below min_slice_size (30)
    strict = mloop.analyze(model, frame, label="y", slices=["site"], min_slice_size=5)
    assert strict.summary["worst_slice_gap"] > 0.9


def test_nulls_strings_and_crosses_on_a_census_frame(census, fair_model) -> None:  # type: ignore[no-untyped-def]
    _, test = census
    model = fair_model
    result = mloop.analyze(model, test, label="income", slices=["education", ("sex", "race")])
    education = _by_slice(result, "education")
    assert education[MISSING]["count"] == test["education"].isna().sum() > 0
    assert sum(s["count"] for s in education.values()) == len(test)
    crossed = _by_slice(result, "sex x race")
    both_missing = (test["sex"].isna() & test["race"].isna()).sum()
    assert crossed[f"{MISSING} & {MISSING}"]["count"] == both_missing
    assert crossed["Female & White"]["count"] == ((test["sex"] == "Female") & (test["race"] == "White")).sum()
    pred = model.predict(test.drop(columns="income"))
    mask = (test["sex"] == "Female").to_numpy() & (test["race"] == "White").to_numpy()
    assert crossed["Female & White"]["metrics"]["accuracy"]["value"] == pytest.approx(
        accuracy_score(test["income"][mask], pred[mask]))


def test_a_hundred_thousand_rows_stay_fast() -> None:
    import time

    from sklearn.impute import SimpleImputer

    from tests.analysis.conftest import NUMERIC, adult_like

    big = adult_like(100_000, seed=6)
    model = make_pipeline(SimpleImputer(), LogisticRegression()).fit(big[NUMERIC].iloc[:5000],
                                                                     big["income"].iloc[:5000])
    started = time.perf_counter()
    result = mloop.analyze(model, big, label="income", slices=["education", "age", ("sex", "race")],
                           sensitive=["sex", "race"])
    elapsed = time.perf_counter() - started
    assert result.n_rows == 100_000 and len(result.fairness["race"]["groups"]) == 5
    assert elapsed < 15, f"analysis of 100,000 rows took {elapsed:.1f}s"
