"""Model serving: an online REST server (``mloop serve``) and batch scoring (``mloop batch-predict``).

Online: MLflow's ``/invocations``, the Open Inference Protocol and a plain ``/predict``
over any registry URI, with signature checks (422 with one entry per field),
micro-batching, A/B and shadow versions, hot reload when an alias or environment moves,
a prediction cache, a circuit breaker with a fallback, Prometheus metrics and a Parquet
prediction log that late labels join. Batch: chunked Arrow scoring of Parquet, CSV or a
SQL query into Parquet or a table, resumable per chunk. ``build_context`` writes a container
build context that runs ``mloop serve``.
"""

from mloop.serving.app import ServingState, create_serving_app
from mloop.serving.batch import BatchResult, batch_predict
from mloop.serving.build import build_context
from mloop.serving.config import EndpointConfig, ServeConfig
from mloop.serving.model import ServedModel
from mloop.serving.predlog import PredictionLog, read_predictions

__all__ = [
    "BatchResult",
    "EndpointConfig",
    "PredictionLog",
    "ServeConfig",
    "ServedModel",
    "ServingState",
    "batch_predict",
    "build_context",
    "create_serving_app",
    "read_predictions",
]
