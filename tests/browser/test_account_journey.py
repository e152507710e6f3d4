"""A creator's account in a real browser: sign up, confirm the address from the email, turn two-factor
authentication on by scanning the QR code (an authenticator app's codes are computed here from the key the page
shows), log out, log in with a code from the app, then once more with a recovery code.

Uses Debian's `chromium` (tests/install-test-packages.sh installs it); skipped when it is not there.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip("Debian's chromium is missing (run tests/install-test-packages.sh as root)", allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser.conftest import confirm_through_mailbox, log_in  # noqa: E402

EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"


def authenticator(secret: str, steps_ahead: int = 0) -> str:
    """What the phone shows: the code of now, or of a step ahead (the server accepts one step of clock skew)."""
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps_ahead))


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("You are logged out.")


def test_sign_up_confirm_two_factor_and_log_in_with_a_code_then_a_recovery_code(live_server, new_page, screenshot):
    server = live_server(demo=True)
    page_errors: list[str] = []
    page = new_page()
    page.on("pageerror", lambda error: page_errors.append(str(error)))

    # 1. Sign up: the answer is the same whether or not the address has an account, so it says to check the inbox.
    page.goto(server.url + "/signup")
    page.get_by_label("Your name").fill("Ada Teacher")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Your time zone").select_option("Europe/Paris")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    screenshot(page, "account-01-check-your-inbox")

    # 2. Confirm the address from the email (the dev mailbox keeps it), then log in.
    confirm_through_mailbox(page, server, EMAIL)
    screenshot(page, "account-02-address-confirmed")
    log_in(page, server, EMAIL, PASSWORD)
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.locator("#confirm-email-notice")).to_have_count(0)

    # 3. Turn two-factor authentication on: a QR code drawn by the server, then the first code from the app.
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Your account", exact=True)).to_be_visible()
    screenshot(page, "account-03-account-page")
    page.locator("#two-factor").get_by_role("link", name="Manage").click()
    page.get_by_role("button", name="Set up two-factor authentication").click()
    qr = page.locator("#totp-qr")
    expect(qr).to_be_visible()
    expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    assert qr.evaluate("image => image.naturalWidth") > 0  # the browser drew it under the page's strict CSP
    secret = page.locator("#totp-secret").inner_text()
    screenshot(page, "account-04-scan-the-qr-code")
    page.get_by_label("Code from your app").fill("000000" if authenticator(secret) != "000000" else "111111")
    page.get_by_role("button", name="Turn on").click()
    expect(page.locator(".field-error")).to_contain_text("That code is not right.")
    page.get_by_label("Code from your app").fill(authenticator(secret))
    page.get_by_role("button", name="Turn on").click()
    codes = page.locator("#recovery-codes code")
    expect(codes).to_have_count(10)
    recovery_code = codes.first.inner_text()
    screenshot(page, "account-05-recovery-codes")

    # 4. Log out; logging in now asks for a code after the password.
    log_out(page)
    log_in(page, server, EMAIL, PASSWORD)
    expect(page).to_have_url(re.compile(r"/login/code$"))
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
    screenshot(page, "account-06-asks-for-a-code")
    page.get_by_label("Code").fill(authenticator(secret, steps_ahead=1))  # the first code's step is spent
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    screenshot(page, "account-07-logged-in-with-a-code")

    # 5. Log out again and use a recovery code instead of the app; it works once.
    log_out(page)
    log_in(page, server, EMAIL, PASSWORD)
    page.get_by_label("Code").fill(recovery_code)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.locator(".flash")).to_contain_text("You used a recovery code")
    screenshot(page, "account-08-logged-in-with-a-recovery-code")
    page.goto(server.url + "/account")
    expect(page.locator("#login-list tbody tr").first).to_contain_text("password and recovery code")
    screenshot(page, "account-09-recent-log-ins")

    log_out(page)
    log_in(page, server, EMAIL, PASSWORD)
    page.get_by_label("Code").fill(recovery_code)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".form-error")).to_contain_text("That code is not right.")
    screenshot(page, "account-10-recovery-code-used-twice")

    assert page_errors == [], f"JavaScript errors on the pages: {page_errors}"
