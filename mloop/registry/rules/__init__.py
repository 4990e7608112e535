"""Rule-based model selection (Gallery style): given / when / environment / select."""

from mloop.registry.rules.evaluate import Selection
from mloop.registry.rules.rule import Rule

__all__ = ["Rule", "Selection"]
