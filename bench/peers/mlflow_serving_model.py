"""MLflow's side of bench/serving.py: save the same logistic regression as an MLflow model; prints JSON."""

import json
import sys

import mlflow
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


def main() -> None:
    path = sys.argv[1]
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, 20)), columns=[f"f{i}" for i in range(20)])
    y = (X.sum(axis=1) > 0).astype(int)
    mlflow.sklearn.save_model(LogisticRegression().fit(X, y), path, input_example=X.head(5))
    print(json.dumps({"path": path, "version": mlflow.__version__}))


if __name__ == "__main__":
    main()
