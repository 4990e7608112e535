"""mloop: the MLOps loop in one package.

>>> import mloop
>>> mloop.__version__
'0.1.0'
"""

from __future__ import annotations

from mloop._util.lazy import lazy_getattr

__version__ = "0.1.0"

# Names resolved on first use, so `import mloop` (and the CLI) start fast.
_LAZY = {
    "ActiveRun": "mloop._sdk",
    "active_run": "mloop._sdk",
    "autolog": "mloop._sdk",
    "best_run": "mloop._sdk",
    "client": "mloop._sdk",
    "compare_runs": "mloop._sdk",
    "configure": "mloop._sdk",
    "create_experiment": "mloop._sdk",
    "gc": "mloop._sdk",
    "get_experiment": "mloop._sdk",
    "get_run": "mloop._sdk",
    "list_experiments": "mloop._sdk",
    "load_model": "mloop._sdk",
    "log_metric": "mloop._sdk",
    "log_metrics": "mloop._sdk",
    "log_param": "mloop._sdk",
    "log_params": "mloop._sdk",
    "search_runs": "mloop._sdk",
    "set_tag": "mloop._sdk",
    "start_run": "mloop._sdk",
    "log_input": "mloop._sdk",
    "log_figure": "mloop._sdk",
    "log_dict": "mloop._sdk",
    "log_text": "mloop._sdk",
    "log_artifacts": "mloop._sdk",
    "log_artifact": "mloop._sdk",
    "set_experiment": "mloop._sdk",
    "set_tags": "mloop._sdk",
    "last_active_run": "mloop._sdk",
    "end_run": "mloop._sdk",
    "Settings": "mloop.config",
    "MloopError": "mloop.errors",
    "RunStatus": "mloop.tracking.entities",
    "RegistryClient": "mloop.registry.client",
    "infer_schema": "mloop.validation",
    "validate": "mloop.validation",
    "drift": "mloop.validation",
    "profile": "mloop.validation",
    "load_schema": "mloop.validation",
    "Schema": "mloop.validation",
    "Profile": "mloop.validation",
    "performance_by_window": "mloop.validation",
    "model_registry": "mloop._sdk",
    "feature_store": "mloop._sdk",
    "FeatureStore": "mloop.features",
    "FlowSpec": "mloop.flows",
    "Parameter": "mloop.flows",
    "step": "mloop.flows",
    "batch_predict": "mloop.serving.batch",
    "analyze": "mloop.analysis",
    "automl": "mloop.automl",
    "tune": "mloop.tuning.search",
    "load_study": "mloop.tuning.study",
}

__all__ = sorted(["__version__", *_LAZY])


__getattr__ = lazy_getattr("mloop", _LAZY, globals())


def __dir__() -> list[str]:
    return __all__
