"""The browser tests' fixtures: Debian's chromium through Playwright, a fresh context per person, screenshots."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1100, "height": 800}

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is missing (run tests/install-test-packages.sh as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """`new_page()` -> a page in a fresh browser context: one context per person, so no shared cookies.

    `new_page(locale="fr-FR", timezone_id="America/Toronto")`: a browser set to another language and zone;
    `viewport={"width": 390, "height": 844}`: a phone's screen.
    """
    contexts = []

    def factory(locale: str = "en-GB", timezone_id: str = "Europe/Berlin", viewport: dict | None = None) -> Page:
        context = browser.new_context(locale=locale, timezone_id=timezone_id, viewport=viewport or VIEWPORT)
        # Like the conftest's guard for Python sockets: the browser only talks to this machine.
        context.route(re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/])"), lambda route: route.abort())
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot(request):
    """`screenshot(page, "01-signup")` saves a full-page PNG under test-artifacts/browser/."""
    backend = request.node.callspec.params.get("database_url", "sqlite") if hasattr(request.node, "callspec") else ""
    folder = ARTIFACTS if backend in ("", "sqlite") else ARTIFACTS / backend
    folder.mkdir(parents=True, exist_ok=True)

    def save(page: Page, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return save
