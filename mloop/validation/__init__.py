"""Data validation and drift: schemas inferred and enforced, profiles, drift with sound statistics, reports.

>>> import pandas as pd
>>> from mloop.validation import infer_schema, validate
>>> schema = infer_schema(pd.DataFrame({"hour": [0, 8, 23]}))
>>> validate(pd.DataFrame({"hour": [77]}), schema).passed
False
"""

from mloop.validation.attach import attach_to_model_version, log_dataset, model_profile, model_schema
from mloop.validation.drift_detection import ColumnDrift, DriftResult, drift, register_method
from mloop.validation.drift_detection.concept import performance_by_window
from mloop.validation.profile import Profile, profile
from mloop.validation.schema import ColumnSchema, Schema, infer_schema, load_schema
from mloop.validation.serving import serving_check
from mloop.validation.validate import DataValidationError, ValidationResult, Violation, validate

__all__ = ["ColumnDrift", "ColumnSchema", "DataValidationError", "DriftResult", "Profile", "Schema",
           "ValidationResult", "Violation", "attach_to_model_version", "drift", "infer_schema", "load_schema",
           "log_dataset", "model_profile", "model_schema", "performance_by_window", "profile", "register_method",
           "serving_check", "validate"]
