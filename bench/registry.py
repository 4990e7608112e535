"""Registry benchmark: mloop (SQLite) against MLflow (SQLite) on the same workload.

    python bench/registry.py [--repeat 20] [--versions 1000] [--skip-peer]

Workloads, with a scikit-learn Ridge on 20 features:
- registering a new version of a model already logged under a run;
- resolving ``models:/bench@champion`` and loading it as users do (mloop: ``mloop.load_model``; MLflow:
  ``mlflow.pyfunc.load_model``, the generic loader, and ``mlflow.sklearn.load_model``), three ways:
  cold (the first call in a fresh process, the package imported first; each side in its own process),
  ``cache=False`` (mloop deserializes every time, as MLflow always does) and cached (mloop's default: the
  same bytes, already verified, are not deserialized again), each against MLflow's load;
- logging the model under a run (informational);
- a selection rule over ``--versions`` registered versions with 5 metrics each (mloop only:
  MLflow has no selection rules), from the database read to the winner with every reason.
MLflow runs in its own virtualenv (bench/.venv-mlflow). Exits 1 when a loaded model predicts wrong or a
selection picks no winner.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import WORK, LoadWatch, check, finish, fmt, median_time, peer_python, ratio, run_peer  # noqa: E402

import mloop  # noqa: E402
from mloop._sdk import ActiveRun  # noqa: E402
from mloop.config import Settings  # noqa: E402
from mloop.registry import RegistryClient, load_model, registry_for, save_model  # noqa: E402
from mloop.registry.rules import Rule  # noqa: E402
from mloop.tracking import TrackingClient  # noqa: E402

RULE = Rule(name="bench-champion", given="tags.city = 'sf'",
            when="metrics.mae < 0.5 and metrics.bias between -0.2 and 0.2 and metrics.auc >= 0.3",
            alias="champion", select=("metrics.rmse asc", "newest"))


def model_and_frame() -> tuple[object, pd.DataFrame]:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(1000, 20)), columns=[f"f{i}" for i in range(20)])
    y = X.to_numpy() @ rng.normal(size=20)
    return Ridge().fit(X, y), X


def measure(home: Path, repeat: int, db_url: str | None = None) -> dict[str, float]:
    settings = Settings.load(home=str(home), **({"db_url": db_url} if db_url else {}))
    tracking = TrackingClient(settings)
    registry = registry_for(settings)
    model, X = model_and_frame()

    def log_once():  # type: ignore[no-untyped-def]
        with tracking.start_run("bench-registry", run_class=ActiveRun, capture_environment=False) as run:
            run.log_metric("mae", 1.0)
            return run.log_model(model, input_example=X.head(5))

    result = {"log_model_s": median_time(log_once, max(3, repeat // 4))}
    logged = log_once()
    registry.register("bench", logged.uri)
    result["register_s"] = median_time(lambda: registry.register("bench", logged.uri), repeat)
    registry.set_alias("bench", "champion", 1)
    rows = X.head(10)
    expected = model.predict(rows)  # type: ignore[attr-defined]
    result["load_cold_s"] = cold_load(home, db_url, rows, expected)
    mloop.configure(home=str(home), **({"db_url": db_url} if db_url else {}))  # what mloop.load_model reads
    uri = "models:/bench@champion"
    for label, loader in (("cached", mloop.load_model), ("cache=False", load_uncached)):
        check(np.allclose(loader(uri).predict(rows), expected),  # type: ignore[attr-defined]
              f"models:/bench@champion ({label}) predicts other values than the model it registered")
    result["load_cached_s"] = median_time(lambda: mloop.load_model(uri), repeat)
    result["load_nocache_s"] = median_time(lambda: load_uncached(uri), repeat)
    loaded = mloop.load_model(uri)
    result["predict_s"] = median_time(lambda: loaded.predict(rows), repeat)
    return result


_NOTED: list[str] = []


def load_uncached(uri: str) -> object:
    """``mloop.load_model(uri, cache=False)``; where the SDK function does not take ``cache`` yet, the
    registry's ``load_model`` it wraps, with the same client (said once in the output)."""
    try:
        return mloop.load_model(uri, cache=False)  # type: ignore[call-arg]
    except TypeError:
        if not _NOTED:
            _NOTED.append("note: mloop.load_model has no cache= on this branch; cache=False timed through "
                          "mloop.registry.load_model(uri, client=mloop.model_registry(), cache=False)")
            print(_NOTED[0], flush=True)
        return load_model(uri, client=mloop.model_registry(), cache=False)


def cold_load(home: Path, db_url: str | None, rows: pd.DataFrame, expected: np.ndarray) -> float:
    """Seconds of the first ``mloop.load_model("models:/bench@champion")`` in a fresh process that has
    imported mloop (and pandas, which the caller's code has too); the model's predictions are checked."""
    code = ("import json, sys, time\nimport pandas as pd\nimport mloop\n"
            "t = time.perf_counter(); m = mloop.load_model('models:/bench@champion'); s = time.perf_counter() - t\n"
            "rows = pd.DataFrame(json.loads(sys.stdin.read()))\n"
            "print(json.dumps({'seconds': s, 'predictions': m.predict(rows).tolist()}))")
    env = dict(os.environ, MLOOP_HOME=str(home), PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    if db_url:
        env["MLOOP_DB_URL"] = db_url
    out = subprocess.run([sys.executable, "-c", code], input=rows.to_json(orient="columns"), env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"cold load failed:\n{out.stderr[-3000:]}")
    found = json.loads(out.stdout.strip().splitlines()[-1])
    check(np.allclose(found["predictions"], expected), "a cold-loaded model predicts other values")
    return float(found["seconds"])


def populate(registry: RegistryClient, tracking: TrackingClient, versions: int) -> None:
    """``versions`` runs with 5 metrics each, each with the same small model logged and registered."""
    from sklearn.linear_model import Ridge

    folder = Path(tempfile.mkdtemp()) / "m"
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    save_model(Ridge().fit(X, [0.0, 1.0, 2.0]), folder, input_example=X)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    rng = np.random.default_rng(1)
    exp = tracking.get_or_create_experiment("bench-rules").experiment_id
    now = int(time.time() * 1000)
    for i in range(versions):
        run = tracking.repo.create_run(exp, None, "bench", {}, None, "")
        values = rng.random(5)
        tracking.repo.log_metrics([(run.run_id, k, float(v) - (0.5 if k == "bias" else 0.0), 0, now)
                                   for k, v in zip(("mae", "rmse", "bias", "auc", "latency"), values, strict=True)])
        for path in files:
            tracking.repo.put_artifact(run.run_id, f"model/{path.relative_to(folder).as_posix()}", path)
        registry.register(f"m{i % 10}", f"runs:/{run.run_id}/model", tags={"city": "sf" if i % 2 else "nyc"})
    shutil.rmtree(folder.parent)


def selection(home: Path, versions: int, repeat: int) -> dict[str, float]:
    settings = Settings.load(home=str(home))
    registry, tracking = registry_for(settings), TrackingClient(settings)
    print(f"  registering {versions:,} versions with 5 metrics each...", flush=True)
    start = time.perf_counter()
    populate(registry, tracking, versions)
    per_version = (time.perf_counter() - start) / versions
    chosen = registry.rules.evaluate(RULE)
    check(chosen.winner is not None and len(chosen.candidates) == versions,
          f"the rule saw {len(chosen.candidates)} candidates of {versions} or picked no winner")
    return {"select_s": median_time(lambda: registry.rules.evaluate(RULE), repeat),
            "populate_per_version_s": per_version}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20, help="timings per workload (the median is reported)")
    parser.add_argument("--versions", type=int, default=1000, help="registered versions for rule selection")
    parser.add_argument("--skip-peer", action="store_true", help="do not run MLflow")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate mloop and MLflow this many times and keep each one's best median "
                             "(a shared machine's load then hits both sides alike)")
    args = parser.parse_args()
    watch = LoadWatch()
    shutil.rmtree(WORK / "registry", ignore_errors=True)
    ours: dict[str, float] = {}
    peer: dict[str, float] = {}
    version = ""
    for round_ in range(args.rounds):
        print(f"  round {round_ + 1}: mloop sqlite...", flush=True)
        _keep_best(ours, measure(WORK / "registry" / f"sqlite-{round_}", args.repeat))
        if not args.skip_peer:
            print(f"  round {round_ + 1}: mlflow sqlite...", flush=True)
            found = run_peer(peer_python("mlflow", ["mlflow"]), "mlflow_registry.py", str(args.repeat))
            version = str(found.pop("version"))
            _keep_best(peer, found)
    ours.update(selection(WORK / "registry" / "rules", args.versions, args.repeat))
    report(ours, peer, version, args, postgres(args.repeat))
    finish(watch)


def postgres(repeat: int) -> dict[str, float]:
    """The same workloads with the metadata on PostgreSQL (a throwaway schema); empty when it is not running."""
    import sqlalchemy as sa

    url = os.environ.get("MLOOP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"bench_registry_{int(time.time())}"
    try:
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # PostgreSQL not running: report without it
        print(f"  PostgreSQL skipped: {exc}")
        return {}
    try:
        print("  mloop postgres...", flush=True)
        return measure(WORK / "registry" / "pg", repeat, f"{url}?options=-csearch_path%3D{schema}")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")


def _keep_best(best: dict[str, float], found: dict[str, float]) -> None:
    for key, value in found.items():
        best[key] = min(best.get(key, value), value)


def report(ours: dict[str, float], peer: dict[str, float], version: str, args: argparse.Namespace,
           pg: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = [("register a version (sklearn, 20 features)", "register_s", "register_s"),
            ("load models:/bench@champion: cold (fresh process, 1st call)", "load_cold_s", "load_cold_s"),
            ("  cache=False (deserialize every time) vs MLflow pyfunc", "load_nocache_s", "load_s"),
            ("  cached (the default) vs MLflow pyfunc", "load_cached_s", "load_s"),
            ("  cached vs MLflow's native sklearn loader", "load_cached_s", "load_native_s"),
            ("log_model under a run (with input example)", "log_model_s", "log_model_s"),
            ("predict 10 rows with signature checks", "predict_s", None),
            (f"select over {args.versions:,} versions x 5 metrics (rule)", "select_s", None)]
    table = Table(title=f"Registry: mloop vs MLflow (best of {args.rounds} rounds of medians; "
                        "ratio = how many times faster mloop is)")
    for column in ("workload", "mloop sqlite", "mloop postgres", f"mlflow {version} sqlite", "ratio (sqlite)"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for label, mine, theirs in rows:
        other = peer.get(theirs) if theirs else None
        table.add_row(label, fmt(ours.get(mine), "s"), fmt(pg.get(mine), "s"), fmt(other, "s"),
                      ratio(ours.get(mine), other, False))
    Console(width=200).print(table)
    print("Targets: register and load each >= 5x faster than MLflow; selection over 1,000 versions < 100 ms.")
    print(f"(populating took {ours['populate_per_version_s'] * 1000:.1f} ms per version: run, metrics, "
          "model files, register)")


if __name__ == "__main__":
    main()
