"""What the browser journeys share: one headless Chromium per module, a fresh context per person, full-page
screenshots under test-artifacts/browser/, and the creator's first steps (confirming the address through the dev
mailbox, logging in). The test modules skip themselves when Debian's chromium is missing."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from webinar_pay.services.outbox.dispatch import dispatch_due

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
def browser() -> Iterator:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """`new_page()` -> a page in a fresh browser context: one context per person, so no shared cookies.

    `new_page(locale="fr-FR", timezone_id="America/Toronto")`: a browser set to another language and zone.
    """
    contexts = []

    def factory(locale: str = "en-GB", timezone_id: str = "Europe/Berlin"):
        context = browser.new_context(locale=locale, timezone_id=timezone_id, viewport=VIEWPORT)
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

    def save(page, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return save


def confirm_through_mailbox(page, server, address: str) -> None:
    """Send the emails due (the worker's part), open the confirmation email in the dev mailbox and follow its link."""
    with server.app.app_context():
        dispatch_due()
    page.goto(server.url + "/dev/mailbox/")
    row = page.locator("#mailbox tbody tr", has_text=address).filter(has_text="Confirm your email address").first
    row.get_by_role("link").click()
    text = page.locator("pre.email-text").inner_text()
    link = re.search(r"http://\S+/confirm/\S+", text)[0]
    page.goto(link)
    expect(page.locator(".flash").first).to_contain_text(f"{address} is confirmed")


def log_in(page, server, email: str, password: str) -> None:
    """The password step of logging in (a second step follows when two-factor authentication is on)."""
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
