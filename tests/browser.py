"""Headless Chromium for the tests that look at a page as a person would: Debian's browser, never one a tool
downloads, and no request may leave this machine (the pages must work offline)."""

from __future__ import annotations

import atexit
import shutil
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import service_missing


def chromium() -> str:
    """The path of Debian's chromium, or a skip (a failure in CI) saying what is missing."""
    pytest.importorskip("playwright.sync_api", reason="the browser check needs the playwright package (dev extra)")
    found = shutil.which("chromium")
    if found is None:
        service_missing("chromium", "the browser check needs Debian's chromium: apt-get install -y chromium")
    return found  # type: ignore[return-value]


_playwright: Any = None
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]


def playwright() -> Any:
    """The test process's one Playwright: its sync API cannot run twice at once in a process, and the UI tests
    hold a browser for the whole session while other modules open pages of their own."""
    global _playwright
    if _playwright is None:
        from playwright.sync_api import sync_playwright

        _playwright = sync_playwright().start()
        atexit.register(_playwright.stop)
    return _playwright


def browse(url: str, ready: str) -> tuple[int, list[str], list[str]]:
    """Open ``url`` and wait for ``ready``: (elements matching it, URLs answered, URLs that failed).

    Requests to any host but this machine are aborted, as they would be on a machine without internet, so a
    page that needs a CDN shows what it would show there.
    """
    answered: list[str] = []
    failed: list[str] = []
    executable = chromium()
    browser = playwright().chromium.launch(
        executable_path=executable, args=CHROMIUM_ARGS)
    try:
        page = browser.new_page()
        page.route("**/*", lambda route: route.continue_() if _local(route.request.url) else route.abort())
        page.on("response", lambda r: answered.append(r.url))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.goto(url)
        page.wait_for_selector(ready, timeout=30_000)
        page.wait_for_load_state("networkidle")
        count = page.locator(ready).count()
    finally:
        browser.close()
    return count, answered, failed


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("file", "data", "blob") or parts.hostname in ("127.0.0.1", "localhost", "::1")
