"""Debian's chromium driven by Playwright's sync API, shared by the console's browser tests
(tests/console/test_browser.py and the platform test tests/services/test_console_on_lab.py): the browser
fixture, the watch on console errors and dialogs, and where screenshots go."""
from __future__ import annotations

from contextlib import contextmanager

import os
import tempfile
from pathlib import Path

import pytest

# Screenshots go to a scratch folder so a test run leaves the checkout clean; to refresh the ones
# docs/console.md shows: GOVCTL_SCREENSHOTS=docs/img .venv/bin/pytest -m slow tests/console/test_browser.py
IMG = Path(os.environ.get("GOVCTL_SCREENSHOTS") or Path(tempfile.gettempdir()) / "govctl-console-screenshots")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium (Playwright's own browser download is not reachable; root needs --no-sandbox).
    Module-scoped rather than pytest-playwright's session fixture: Playwright's sync API keeps an event
    loop running in the main thread while it is open, and later tests (asyncio.run in-process) need it gone."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Watch:
    """Console errors, uncaught page errors and dialogs of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_clean(self):
        assert self.dialogs == [], f"a dialog opened (markup from an alert ran?): {self.dialogs}"
        assert self.errors == [], f"the browser console shows errors: {self.errors}"


def expect_text(page, text: str) -> None:
    page.get_by_text(text).first.wait_for()


def expect_state(page, label: str) -> None:
    page.get_by_test_id("state").filter(has_text=label).wait_for()


@contextmanager
def served_in_thread(app):
    """`app` (ASGI) served by uvicorn on a free loopback port in a thread of this process; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the console server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
