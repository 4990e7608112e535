"""Durable events: an outbox written with each change, delivered to webhooks by any number of workers.

``append_event`` (inside a change's transaction) writes an event; ``DeliveryWorker`` sends what is due;
``list_deliveries`` and ``retry`` look at and revive deliveries. See docs/events.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DeliveryWorker", "append_event", "list_deliveries", "retry"]

if TYPE_CHECKING:
    from mloop.events.outbox import append_event
    from mloop.events.query import list_deliveries, retry
    from mloop.events.worker import DeliveryWorker

_HOMES = {"append_event": "mloop.events.outbox", "DeliveryWorker": "mloop.events.worker",
          "list_deliveries": "mloop.events.query", "retry": "mloop.events.query"}


def __getattr__(name: str) -> Any:
    # imported on first use: the registry writes events through this package while it is itself being imported
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(name)
