"""Feature store: one definition of each feature, point-in-time-correct training sets, an online store.

Define entities and feature views (in a ``features.py`` repository or in code), ``apply`` them to
the versioned registry, build training sets with ``training_set``, ``materialize`` them to the
online store (SQLite or Redis) and read them back with ``online``.
"""

from mloop.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    RequestSource,
    on_demand_feature_view,
)
from mloop.features.registry import Plan, Versioned
from mloop.features.serving import OnlineResult, ServingPlan
from mloop.features.sources import DataFrameSource, FileSource, SqlSource
from mloop.features.store import FeatureStore
from mloop.features.types import Bool, Float32, Float64, Int32, Int64, String, Timestamp
from mloop.features.validate import DefinitionError

__all__ = ["Bool", "DataFrameSource", "DefinitionError", "Entity", "FeatureService", "FeatureStore",
           "FeatureView", "Field", "FileSource", "Float32", "Float64", "Int32", "Int64", "OnDemandFeatureView",
           "OnlineResult", "Plan", "RequestSource", "ServingPlan", "SqlSource", "String", "Timestamp",
           "Versioned", "on_demand_feature_view"]
