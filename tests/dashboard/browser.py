"""Headless Chromium for the dashboard's tests: Debian's `chromium` (installed by .ci/run),
driven by Playwright for Python, which never downloads a browser of its own here.

Without Chromium the browser tests skip with the reason locally, and fail under CI
(CI=true), unless .ci/run said why it could not be installed (ASGI_LLM_NO_CHROMIUM).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str:
    """The browser's path, or the test is skipped (or failed, under CI) with the reason."""
    found = (
        os.environ.get("ASGI_LLM_CHROMIUM")
        or next((path for path in CANDIDATES if Path(path).exists()), None)
        or shutil.which("chromium")
    )
    problem = None if found else "no chromium (apt-get install chromium)"
    if problem is None:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "Playwright for Python is not installed (the test extra)"
    if problem is not None:
        cannot = os.environ.get("ASGI_LLM_NO_CHROMIUM")
        if cannot:
            pytest.skip(f"{problem}; .ci/run could not install it: {cannot}")
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need Chromium under CI: {problem}")
        pytest.skip(problem)
    assert found is not None
    return found


def launch() -> Iterator[Any]:
    """A headless browser for the module's tests."""
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


class PageWatch:
    """What a page reported that a test must not ignore: script errors and CSP refusals."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and "401" not in msg.text
                else None
            ),
        )
