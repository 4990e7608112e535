"""Analysis fixtures: an Adult-like census frame (string categories, 10% nulls) and models trained on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

CATEGORICAL = ["workclass", "education", "sex", "race"]
NUMERIC = ["age", "hours_per_week", "capital_gain"]


def adult_like(n: int, seed: int = 0) -> pd.DataFrame:
    """Census-like rows; income depends on education, age and hours, never on sex or race."""
    rng = np.random.default_rng(seed)
    education = rng.choice(["HS-grad", "Some-college", "Bachelors", "Masters", "Doctorate"], n,
                           p=[0.35, 0.25, 0.25, 0.1, 0.05])
    age = rng.integers(18, 80, n).astype("float64")
    hours = np.clip(rng.normal(40, 10, n), 5, 90).round()
    gain = np.where(rng.random(n) < 0.1, rng.exponential(5000, n), 0.0).round()
    edu_score = pd.Series(education).map({"HS-grad": 0, "Some-college": 0.5, "Bachelors": 1.2, "Masters": 1.8,
                                          "Doctorate": 2.4}).to_numpy()
    logit = -3.0 + edu_score + 0.04 * (age - 40) + 0.05 * (hours - 40) + gain / 4000
    income = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), ">50K", "<=50K")
    frame = pd.DataFrame({"age": age, "workclass": rng.choice(["Private", "Self-emp", "Gov"], n),
                          "education": education, "sex": rng.choice(["Female", "Male"], n),
                          "race": rng.choice(["White", "Black", "Asian-Pac", "Other"], n, p=[0.7, 0.15, 0.1, 0.05]),
                          "hours_per_week": hours, "capital_gain": gain, "income": income})
    for column in ["workclass", "education", "sex", "race", "age", "hours_per_week"]:
        frame.loc[rng.random(n) < 0.1, column] = None  # 10% nulls in each
    return frame


def census_model(train: pd.DataFrame, *, biased_against: str | None = None):  # type: ignore[no-untyped-def]
    """A HistGradientBoosting pipeline on the census frame; ``biased_against`` plants a bias: that sex's
    positive labels are erased from the training set, so the model learns to deny that group."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    y = train["income"].copy()
    if biased_against is not None:
        y[train["sex"] == biased_against] = "<=50K"
    prep = ColumnTransformer([
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)), CATEGORICAL),
        ("num", "passthrough", NUMERIC)])
    model = Pipeline([("prep", prep), ("model", HistGradientBoostingClassifier(max_iter=30, random_state=0))])
    return model.fit(train[CATEGORICAL + NUMERIC], y)


@pytest.fixture(scope="session")
def census() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = adult_like(8000)
    data[CATEGORICAL] = data[CATEGORICAL].astype(object)
    return data.iloc[:5000].reset_index(drop=True), data.iloc[5000:].reset_index(drop=True)


@pytest.fixture(scope="session")
def fair_model(census):  # type: ignore[no-untyped-def]
    return census_model(census[0])


@pytest.fixture(scope="session")
def biased_model(census):  # type: ignore[no-untyped-def]
    return census_model(census[0], biased_against="Female")
