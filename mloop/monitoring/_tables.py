"""Monitoring tables (schema only). Times are epoch milliseconds (UTC).

A monitor's results are a long time series: one row per (window, version, role, metric, column, slice), so a
new metric needs no migration and the dashboard reads a month of windows with one indexed range scan.
"""

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

from mloop.store.sql.tables import metadata

monitors = Table(
    "monitors", metadata,
    Column("name", String(128), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("spec", Text, nullable=False),  # the Monitor as JSON
    Column("watermark", BigInteger, nullable=False),  # every window ending at or before it is computed
    Column("label_watermark", String(128), nullable=False),  # the last feedback file folded in (its key)
    Column("lease_owner", String(64)),  # the run computing it now: one run at a time, from any process
    Column("lease_until", BigInteger),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
)

monitor_series = Table(
    "monitor_series", metadata,
    Column("monitor", String(128), primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("role", String(64), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("column", String(256), primary_key=True),
    Column("slice", String(256), primary_key=True),
    Column("value", Float),
    Index("ix_monitor_series_monitor_metric_start", "monitor", "metric", "start"),  # a chart reads a few metrics
)

# The series rolled up by the hour and by the day (``rollup.py``), refreshed with the windows they hold, so a
# dashboard's month is one range scan of a few thousand rows instead of an aggregation over hundreds of thousands.
monitor_rollups = Table(
    "monitor_rollups", metadata,
    Column("monitor", String(128), primary_key=True),
    Column("every", String(8), primary_key=True),  # 1h | 1d
    Column("metric", String(64), primary_key=True),
    Column("start", BigInteger, primary_key=True),  # the bucket's first millisecond
    Column("version", String(64), primary_key=True),
    Column("role", String(64), primary_key=True),
    Column("column", String(256), primary_key=True),
    Column("slice", String(256), primary_key=True),
    Column("value", Float),
)

monitor_profiles = Table(
    "monitor_profiles", metadata,
    Column("monitor", String(128), primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("role", String(64), primary_key=True),
    Column("profile", Text, nullable=False),  # the window's inputs and prediction, on the training bins
)

alert_rules = Table(
    "monitor_alert_rules", metadata,
    Column("name", String(128), primary_key=True),
    Column("monitor", String(128), nullable=False),
    Column("spec", Text, nullable=False),  # the AlertRule as JSON
    Column("updated", BigInteger, nullable=False),
)

alert_states = Table(
    "monitor_alert_states", metadata,
    Column("rule", String(128), primary_key=True),
    Column("key", String(512), primary_key=True),  # what the rule watches: monitor/version/role/column/slice
    Column("state", String(16), nullable=False),  # ok | pending | firing
    Column("streak", BigInteger, nullable=False),  # consecutive windows breaching (or, while firing, not)
    Column("last_window", BigInteger, nullable=False),
    Column("since", BigInteger, nullable=False),
    Column("value", Float),
)

alert_history = Table(
    "monitor_alert_history", metadata,
    Column("id", String(32), primary_key=True),
    Column("rule", String(128), nullable=False),
    Column("key", String(512), nullable=False),
    Column("event", String(16), nullable=False),  # firing | resolved
    Column("window", BigInteger, nullable=False),
    Column("value", Float),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("silenced", Integer, nullable=False),  # 1: recorded, not delivered (a silence covered it)
    Column("time", BigInteger, nullable=False),
    Index("ix_monitor_alert_history_rule_time", "rule", "time"),
)

silences = Table(
    "monitor_silences", metadata,
    Column("id", String(32), primary_key=True),
    Column("rule", String(128), nullable=False),  # a rule name, or "*" for every rule
    Column("key", String(512), nullable=False),  # a prefix of the watched key; "" for all of the rule's
    Column("until", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
)
