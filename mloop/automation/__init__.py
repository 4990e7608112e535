"""Automation (continuous training): rules that watch a trigger (schedule, new data, drift, a metric drop, a code
change, a manual request) and, when their condition holds, run ordered actions (a flow, the gate, a promotion, a
rollback, a notification), with every firing recorded in the metadata database.

``apply_rules`` stores rules; ``tick`` does one pass (``mloop automation tick``); ``dry_run`` shows what would
fire and why; ``fire_manual`` fires a rule by hand; ``firings`` and ``timeline`` read the history.
"""

from mloop.automation.rules import Rule, load_rules
from mloop.automation.runtime import TickReport, dry_run, fire_manual, run_firings, tick
from mloop.automation.store import apply_rules, firings, get_rule, list_rules, set_paused, timeline

__all__ = ["Rule", "TickReport", "apply_rules", "dry_run", "fire_manual", "firings", "get_rule", "list_rules",
           "load_rules", "run_firings", "set_paused", "tick", "timeline"]
