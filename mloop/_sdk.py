"""The functions a user types most, over one process-wide client.

>>> import mloop, tempfile
>>> _ = mloop.configure(home=tempfile.mkdtemp())
>>> with mloop.start_run(experiment="doc", params={"lr": 0.1}) as run:
...     run.log_metric("rmse", 3.2, step=10)
>>> float(mloop.search_runs("doc")["metrics.rmse"][0])
3.2
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from mloop.config import Settings
from mloop.errors import MloopError
from mloop.tracking import Experiment, Run, RunComparison, RunContext, TrackingClient
from mloop.tracking.entities import Artifact, Dataset, RunStatus
from mloop.tracking.run import _local, run_stack


class ActiveRun(RunContext):
    """The run returned by ``mloop.start_run``; capabilities above tracking add to it (e.g. ``log_model``)."""

    def log_model(self, model: Any, name: str | None = None, *, input_example: Any = None,
                  signature: Any = None, artifact_path: str = "model", flavor: str | None = None,
                  description: str = "", tags: dict[str, Any] | None = None,
                  extra_files: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
                  training_data: Any = None, unknown_categories: str | None = None,
                  pip_requirements: list[str] | None = None, extra_pip_requirements: list[str] | None = None,
                  code_paths: list[Any] | None = None, predict_output: str | None = None) -> Any:
        """Save ``model`` (flavor detected) with its manifest under this run; with ``name`` register a version.

        Returns the new ``ModelVersion`` when ``name`` is given, else a ``LoggedModel`` with its ``runs:/`` URI.
        ``extra_files`` (``{name: path | bytes | dict}``) and ``metadata`` (a JSON-able mapping) are stored
        inside the model, e.g. the training data's schema and profile. ``training_data`` (the training
        frame) says which columns may be null; ``unknown_categories`` ("reject" or "missing") what a value
        outside a category column's categories gets (see ``mloop.registry.save_model``).
        ``pip_requirements`` replaces the inferred requirements, ``extra_pip_requirements`` adds to them;
        ``code_paths`` (``["mymodule.py", "mypkg"]``) copies your own modules into the model so its classes
        load elsewhere, which then needs ``load_model(..., trusted=True)``: importing that code runs it.
        ``predict_output="proba"`` makes a classifier answer class probabilities by default (in
        ``load_model``, ``mloop serve``, ``batch-predict``).
        """
        from mloop.registry import log_model

        return log_model(self, model, name, input_example=input_example, signature=signature,
                         artifact_path=artifact_path, flavor=flavor, description=description, tags=tags,
                         extra_files=extra_files, metadata=metadata, training_data=training_data,
                         unknown_categories=unknown_categories, pip_requirements=pip_requirements,
                         extra_pip_requirements=extra_pip_requirements, code_paths=code_paths,
                         predict_output=predict_output)

    def log_schema(self, schema_or_data: Any, dataset: str = "train") -> Any:
        """Attach a schema (inferred when given data) to the dataset ``dataset`` of this run; see mloop.validation."""
        from mloop.validation.attach import log_schema

        return log_schema(self, schema_or_data, dataset)

    def log_profile(self, profile_or_data: Any, dataset: str = "train") -> Any:
        """Attach a drift profile (computed when given data) to the dataset ``dataset`` of this run."""
        from mloop.validation.attach import log_profile

        return log_profile(self, profile_or_data, dataset)


_client: TrackingClient | None = None
_lock = threading.Lock()


def configure(**settings: Any) -> TrackingClient:
    """Point mloop at other stores (``home=``, ``db_url=``, ``artifact_root=``, ``tracking_uri=``...)."""
    global _client
    with _lock:
        if _client is not None:
            _client.writer.flush()
        _client = TrackingClient(Settings.load(**settings))
        return _client


def client() -> TrackingClient:
    """The process-wide client, created from the environment on first use."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = TrackingClient(Settings.load())
    return _client


def set_experiment(name: str) -> Experiment:
    """Make ``name`` (created if missing) the experiment of later ``start_run()`` calls that name none.

    >>> import mloop, tempfile
    >>> _ = mloop.configure(home=tempfile.mkdtemp())
    >>> mloop.set_experiment("churn").name
    'churn'
    """
    return client().set_experiment(name)


def start_run(experiment: str | None = None, name: str | None = None, **kwargs: Any) -> ActiveRun:
    """Start a run: ``with mloop.start_run(experiment="eta", params={...}) as run: ...``."""
    kwargs.setdefault("run_class", ActiveRun)
    run = client().start_run(experiment, name, **kwargs)
    assert isinstance(run, ActiveRun)
    return run


def active_run() -> RunContext | None:
    """The innermost run started in this thread and not yet ended."""
    stack = run_stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The run active now, else the run that was active last (the last one ended), as stored now.

    >>> import mloop, tempfile
    >>> _ = mloop.configure(home=tempfile.mkdtemp())
    >>> with mloop.start_run(experiment="doc"):
    ...     mloop.log_param("depth", 4)
    4
    >>> mloop.last_active_run().params
    {'depth': 4}
    """
    run = active_run()
    run_id = run.run_id if run is not None else client().last_run_id
    return None if run_id is None else client().get_run(run_id)


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (flushing what it logged) with ``status``; without an active run, do nothing.

    >>> import mloop, tempfile
    >>> _ = mloop.configure(home=tempfile.mkdtemp())
    >>> run = mloop.start_run(experiment="doc")
    >>> mloop.end_run()
    >>> mloop.active_run() is None
    True
    """
    run = active_run()
    if run is not None:
        run.end(status)


def _require_active() -> RunContext:
    run = active_run()
    if run is None:
        raise MloopError("No active run: call mloop.start_run() first (or log on the run object).")
    return run


def log_metric(key: str, value: float, step: int = 0, timestamp: Any = None) -> None:
    """Queue one point of ``key`` on the active run; returns at once.

    >>> import mloop, tempfile
    >>> _ = mloop.configure(home=tempfile.mkdtemp())
    >>> with mloop.start_run(experiment="doc"):
    ...     mloop.log_metric("loss", 0.25, step=3)
    >>> mloop.last_active_run().metrics
    {'loss': 0.25}
    """
    try:  # the direct path: this is called in training loops, millions of times
        run = _local.stack[-1]
    except (AttributeError, IndexError):
        run = _require_active()
    run.log_metric(key, value, step, timestamp)


def log_metrics(metrics: dict[str, float], step: int = 0, timestamp: Any = None) -> None:
    """Queue several metrics at one step on the active run."""
    _require_active().log_metrics(metrics, step, timestamp)


def log_param(key: str, value: Any) -> Any:
    """Queue one param on the active run and return ``value``; a param cannot change once logged."""
    return _require_active().log_param(key, value)


def log_params(params: dict[str, Any]) -> None:
    """Queue params on the active run (durable at ``flush()`` or the run's end)."""
    _require_active().log_params(params)


def set_tag(key: str, value: Any) -> None:
    """Queue one tag on the active run (a later value replaces an earlier one)."""
    _require_active().set_tag(key, value)


def set_tags(tags: dict[str, Any]) -> None:
    """Queue several tags on the active run.

    >>> import mloop, tempfile
    >>> _ = mloop.configure(home=tempfile.mkdtemp())
    >>> with mloop.start_run(experiment="doc"):
    ...     mloop.set_tags({"team": "eta", "stage": "dev"})
    >>> mloop.last_active_run().tags["team"]
    'eta'
    """
    _require_active().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> Artifact | list[Artifact]:
    """Store a file (or every file of a folder) under the active run."""
    return _require_active().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[Artifact]:
    """Store every file of a folder under the active run."""
    return _require_active().log_artifacts(local_dir, artifact_path)


def log_text(text: str, artifact_path: str) -> Artifact:
    """Store a string as a text file artifact of the active run."""
    return _require_active().log_text(text, artifact_path)


def log_dict(data: dict[str, Any], artifact_path: str) -> Artifact:
    """Store a dict as JSON or YAML (by the path's suffix) under the active run."""
    return _require_active().log_dict(data, artifact_path)


def log_figure(figure: Any, artifact_path: str) -> Artifact:
    """Store a matplotlib or Plotly figure under the active run."""
    return _require_active().log_figure(figure, artifact_path)


def log_input(data: Any, name: str | None = None, context: str = "train", source: str | None = None) -> Dataset:
    """Record a dataset the active run used (digest, rows, schema, source)."""
    return _require_active().log_input(data, name, context, source)


def get_run(run_id: str) -> Run:
    """A run as stored, with what this process logged to it so far."""
    return client().get_run(run_id)


def search_runs(experiments: str | list[str] | None = None, filter: str = "",
                order_by: str | list[str] | None = None, limit: int | None = None) -> pd.DataFrame:
    """Search runs with a filter such as ``"metrics.rmse < 4 and params.lr = 0.1"``; returns a DataFrame."""
    return client().search_runs(experiments, filter=filter, order_by=order_by, limit=limit)


def best_run(experiment: str, metric: str, mode: str = "min") -> Run:
    return client().best_run(experiment, metric, mode)


def compare_runs(run_ids: list[str]) -> RunComparison:
    return client().compare_runs(run_ids)


def create_experiment(name: str, tags: dict[str, str] | None = None) -> Experiment:
    return client().create_experiment(name, tags)


def get_experiment(name: str) -> Experiment:
    return client().get_experiment(name)


def list_experiments() -> list[Experiment]:
    return client().list_experiments()


def gc(older_than: timedelta = timedelta(days=30)) -> dict[str, int]:
    """Purge runs deleted longer ago than ``older_than`` (never those a registered model version needs)."""
    return client().gc(older_than)


def load_model(uri: str, *, trusted: bool | list[str] = False, cache: bool = True) -> Any:
    """Load ``runs:/...``, ``models:/name/version``, ``models:/name@alias`` or a folder; see mloop.registry.

    ``trusted`` is True (you trust the model's author) or a list of type and function names to allow besides
    mloop's own list, such as ``["mypkg.transformers.MyScaler"]``. ``cache=False`` deserializes a private
    copy instead of sharing the one already loaded from the same files.
    """
    from mloop.registry import load_model as _load

    return _load(uri, trusted=trusted, client=model_registry(), cache=cache)


def model_registry() -> Any:
    """The model registry (a ``mloop.registry.RegistryClient``) over the same stores as ``client()``."""
    from mloop.registry import registry_for

    return registry_for(client().settings)


def autolog(**kwargs: Any) -> None:
    """Log scikit-learn estimators' params, training metrics and fitted models automatically."""
    from mloop.tracking.autolog import enable_sklearn

    enable_sklearn(**kwargs)


def feature_store(repo: str | None = None, *, project: str = "default", online_url: str | None = None) -> Any:
    """A FeatureStore over the configured home (``repo``: a features.py file or folder of definitions)."""
    from mloop.features import FeatureStore as _FeatureStore

    return _FeatureStore(repo, project=project, settings=client().settings, online_url=online_url)
