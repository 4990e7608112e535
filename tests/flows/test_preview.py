"""A flow artifact's preview reads a pickle without running code, and a small hostile pickle cannot make it
work for ever or fail: values shown are bounded in number, however they nest, and huge numbers are described."""

from __future__ import annotations

import pickle
import threading
from typing import Any

from mloop.flows.preview import preview


def _preview_within(data: bytes, seconds: float) -> dict[str, Any]:
    found: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: found.update(preview(data, "pickle")), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the preview is still walking the pickle"
    return found


def test_shared_references_nested_deep_are_not_walked_for_ever() -> None:
    nested: Any = list(range(100))
    for _ in range(8):
        nested = [nested] * 100  # one list referenced 100 times, 8 levels deep: 100**8 paths in a few KB
    data = pickle.dumps(nested)
    assert len(data) < 10_000
    shown = _preview_within(data, 20)
    assert shown["kind"] == "value" and shown["type"] == "list"
    assert "…" in repr(shown["value"])  # cut, and said so


def test_a_huge_integer_is_described_not_printed() -> None:
    shown = _preview_within(pickle.dumps({10**20000: [2**70000]}), 20)
    assert shown["kind"] == "value"
    (key, value), = shown["value"].items()
    assert key.startswith("an integer of") and value == ["an integer of 70001 bits"]


def test_plain_values_still_show_as_they_are() -> None:
    shown = preview(pickle.dumps({"lr": 0.1, "layers": [64, 32], "name": "x" * 5000, "ok": True}), "pickle")
    assert shown["value"] == {"lr": 0.1, "layers": [64, 32], "name": "x" * 2000, "ok": True}
