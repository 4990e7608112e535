"""Registry benchmark: mloop (SQLite) against MLflow (SQLite) on the same workload.

    python bench/registry.py [--repeat 20] [--versions 1000] [--skip-peer]

Workloads, with a scikit-learn Ridge on 20 features:
- registering a new version of a model already logged under a run;
- resolving ``models:/bench@champion`` and loading it (mloop: ``load_model``; MLflow:
  ``mlflow.pyfunc.load_model``, the generic loader, and ``mlflow.sklearn.load_model``);
- logging the model under a run (informational);
- a selection rule over ``--versions`` registered versions with 5 metrics each (mloop only:
  MLflow has no selection rules), from the database read to the winner with every reason.
MLflow runs in its own virtualenv (bench/.venv-mlflow).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import WORK, fmt, median_time, peer_python, ratio, run_peer  # noqa: E402

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
    assert len(load_model("models:/bench@champion", client=registry).predict(rows)) == 10
    result["load_s"] = median_time(lambda: load_model("models:/bench@champion", client=registry), repeat)
    result["load_nocache_s"] = median_time(
        lambda: load_model("models:/bench@champion", client=registry, cache=False), repeat)
    loaded = load_model("models:/bench@champion", client=registry)
    result["predict_s"] = median_time(lambda: loaded.predict(rows), repeat)
    return result


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
    assert chosen.winner is not None and len(chosen.candidates) == versions
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
            ("resolve + load models:/bench@champion", "load_s", "load_s"),
            ("  same, vs MLflow's native sklearn loader", "load_s", "load_native_s"),
            ("  same, mloop cache=False (deserialize every time)", "load_nocache_s", "load_s"),
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
