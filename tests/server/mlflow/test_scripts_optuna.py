"""An Optuna study with optuna-integration's MLflowCallback, 10 trials, logging to ``mloop server``."""

from __future__ import annotations

import pytest

import mloop

optuna = pytest.importorskip("optuna")
MLflowCallback = pytest.importorskip("optuna_integration").MLflowCallback


@pytest.mark.filterwarnings("ignore:MLflowCallback has been deprecated",
                            "ignore::optuna.exceptions.ExperimentalWarning")
def test_optuna_study_with_the_mlflow_callback(tracking_uri: str) -> None:
    import mlflow
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import cross_val_score

    X, y = load_diabetes(return_X_y=True)
    callback = MLflowCallback(tracking_uri=tracking_uri, metric_name="neg_mse")

    @callback.track_in_mlflow()  # the run opens in the objective and the callback resumes it to log the result
    def objective(trial: optuna.Trial) -> float:
        alpha = trial.suggest_float("alpha", 1e-3, 10.0, log=True)
        solver = trial.suggest_categorical("solver", ["auto", "cholesky", "svd"])
        mlflow.log_metric("alpha_seen", alpha)
        return float(cross_val_score(Ridge(alpha=alpha, solver=solver), X, y, cv=3,
                                     scoring="neg_mean_squared_error").mean())

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="ridge-study", direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=10, callbacks=[callback])

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("ridge-study")
    runs = client.search_runs([experiment.experiment_id], order_by=["metrics.neg_mse DESC"])
    assert len(runs) == 10 and {r.info.status for r in runs} == {"FINISHED"}
    best = runs[0]
    assert best.data.metrics["neg_mse"] == pytest.approx(study.best_value)
    assert float(best.data.params["alpha"]) == pytest.approx(study.best_params["alpha"])
    assert best.data.params["solver"] == study.best_params["solver"]
    assert best.data.tags["direction"] == "MAXIMIZE" and best.data.tags["state"] == "COMPLETE"
    assert best.info.run_name == best.data.tags["number"]
    assert all(r.data.metrics["alpha_seen"] == pytest.approx(float(r.data.params["alpha"])) for r in runs)

    # mloop's SDK sees the same ten trials, in the same order
    mloop.configure(tracking_uri=tracking_uri)
    frame = mloop.search_runs("ridge-study", order_by="metrics.neg_mse DESC")
    assert frame["run_id"].tolist() == [r.info.run_id for r in runs]
    assert frame["metrics.neg_mse"].tolist() == pytest.approx([r.data.metrics["neg_mse"] for r in runs])
    assert frame["params.solver"].tolist() == [r.data.params["solver"] for r in runs]
