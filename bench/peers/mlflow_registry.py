"""MLflow's side of bench/registry.py; runs inside bench/.venv-mlflow and prints JSON.

Same workload as mloop's side: a scikit-learn model on 20 features, logged once; then
(1) registering a new version of it, (2) resolving ``models:/name@champion`` and loading it
(pyfunc, the generic ``predict``; the native sklearn loader is measured too), also cold: the first load
in a fresh process that has imported mlflow (and pandas).
"""

import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
logging.getLogger("mlflow").setLevel(logging.ERROR)

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import mlflow.sklearn  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    tmp = tempfile.mkdtemp()
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{tmp}/mlflow.db")
    client = MlflowClient()
    exp = client.create_experiment("bench-registry", artifact_location=f"{tmp}/artifacts")
    mlflow.set_experiment(experiment_id=exp)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(1000, 20)), columns=[f"f{i}" for i in range(20)])
    y = X.to_numpy() @ rng.normal(size=20)
    model = Ridge().fit(X, y)
    result = {"version": mlflow.__version__}

    def log_once():
        with mlflow.start_run():
            mlflow.log_metric("mae", 1.0)
            return mlflow.sklearn.log_model(model, name="model", input_example=X.head(5))

    result["log_model_s"] = timed(log_once, max(3, repeat // 4))
    info = log_once()
    mlflow.register_model(info.model_uri, "bench")  # the model exists; time the versions after it
    result["register_s"] = timed(lambda: mlflow.register_model(info.model_uri, "bench"), repeat)
    client.set_registered_model_alias("bench", "champion", 1)
    rows = X.head(10)
    assert np.allclose(mlflow.pyfunc.load_model("models:/bench@champion").predict(rows), model.predict(rows))
    cold = ("import json, sys, time\nimport pandas as pd\nimport mlflow\n"
            f"mlflow.set_tracking_uri('sqlite:///{tmp}/mlflow.db'); mlflow.set_registry_uri('sqlite:///{tmp}/mlflow.db')\n"
            "t = time.perf_counter(); m = mlflow.pyfunc.load_model('models:/bench@champion')\n"
            "s = time.perf_counter() - t\nrows = pd.DataFrame(json.loads(sys.stdin.read()))\n"
            "print(json.dumps({'seconds': s, 'predictions': m.predict(rows).tolist()}))")
    out = subprocess.run([sys.executable, "-c", cold], input=rows.to_json(orient="columns"), capture_output=True,
                         text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert np.allclose(found["predictions"], model.predict(rows))
    result["load_cold_s"] = found["seconds"]
    result["load_s"] = timed(lambda: mlflow.pyfunc.load_model("models:/bench@champion"), repeat)
    result["load_native_s"] = timed(lambda: mlflow.sklearn.load_model("models:/bench@champion"), repeat)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
