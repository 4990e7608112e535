"""Data validation and drift: schemas inferred and enforced, profiles, drift with sound statistics, reports.

>>> import pandas as pd
>>> from mloop.validation import infer_schema, validate
>>> schema = infer_schema(pd.DataFrame({"hour": [0, 8, 23]}))
>>> validate(pd.DataFrame({"hour": [77]}), schema).passed
False
"""

from mloop.validation.drift import ColumnDrift, DriftResult, drift, register_method
from mloop.validation.profile import Profile, profile
from mloop.validation.schema import ColumnSchema, Schema, infer_schema, load_schema
from mloop.validation.validate import DataValidationError, ValidationResult, Violation, validate

__all__ = ["ColumnDrift", "ColumnSchema", "DataValidationError", "DriftResult", "Profile", "Schema",
           "ValidationResult", "Violation", "drift", "infer_schema", "load_schema", "profile", "register_method",
           "validate"]
