"""Documentation that cannot rot: every ```python block of docs/*.md, and every docstring example, runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import mloop

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _reset_sdk() -> None:
    import mloop._sdk as sdk

    sdk._client = None


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_docs_page_examples_run(page: Path) -> None:
    blocks = BLOCK.findall(page.read_text())
    assert blocks, f"{page.name} has no python example"
    _reset_sdk()
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, code in enumerate(blocks, 1):
        try:
            exec(compile(code, f"{page.name}[block {number}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page.name}, python block {number} failed: {exc!r}\n{code}") from exc
    _reset_sdk()


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(mloop.__path__, "mloop."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples_run(module_name: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # an optional dependency this machine lacks
        pytest.skip(f"{module_name}: {exc}")
    _reset_sdk()
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    _reset_sdk()
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module_name}"
