"""The whole demo-mode journey in a real browser: a creator signs up and publishes a session, an attendee
pays with the test payment method and gets the join link, and the creator sees the paid attendee.

Uses Debian's `chromium` (tests/install-test-packages.sh installs it); skipped when it is not there.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip("Debian's chromium is missing (run tests/install-test-packages.sh as root)", allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

from tests.browser.conftest import confirm_through_mailbox, log_in  # noqa: E402

JOIN_LINK = "https://meet.example.com/x"


def expect_test_mode_banner(page: Page) -> None:
    expect(page.locator(".test-mode-banner")).to_be_visible()
    expect(page.locator(".test-mode-banner")).to_contain_text("Test mode")


def test_demo_journey_from_signup_to_paid_ticket(live_server, new_page, screenshot):
    server = live_server(demo=True)
    page_errors: list[str] = []

    # 1. The creator signs up and lands on the new-session form.
    creator = new_page()
    creator.on("pageerror", lambda error: page_errors.append(str(error)))
    creator.goto(server.url + "/signup")
    expect_test_mode_banner(creator)
    creator.get_by_label("Your name").fill("Ada Teacher")
    creator.get_by_label("Email").fill("ada@example.com")
    creator.get_by_label("Password", exact=True).fill("correct horse battery")
    creator.get_by_label("Your time zone").select_option("Europe/Paris")
    screenshot(creator, "01-signup")
    creator.get_by_role("button", name="Create account").click()
    expect(creator.get_by_role("heading", name="Check your inbox")).to_be_visible()
    confirm_through_mailbox(creator, server, "ada@example.com")  # paid seats need a confirmed address
    log_in(creator, server, "ada@example.com", "correct horse battery")
    creator.goto(server.url + "/dashboard/sessions/new")
    expect(creator.get_by_role("heading", name="New session")).to_be_visible()

    # 2. They fill the form and publish.
    starts = (datetime.now() + timedelta(days=7)).replace(hour=18, minute=30)
    creator.get_by_label("Title").fill("Watercolour basics")
    creator.get_by_label("Description").fill("Two hours of brushes and paper.")
    creator.get_by_label("Starts at (local time)").fill(starts.strftime("%Y-%m-%dT%H:%M"))
    creator.get_by_label("Time zone").select_option("Europe/Paris")
    creator.get_by_label("Duration (minutes)").fill("90")
    creator.get_by_label("Price").fill("25.00")
    creator.get_by_label("Currency").fill("EUR")
    creator.get_by_label("Seats").fill("5")
    creator.get_by_label("Where it happens").select_option("link")
    creator.get_by_label("Join link").fill(JOIN_LINK)
    screenshot(creator, "02-new-session-form")
    creator.get_by_role("button", name="Save and publish").click()
    expect(creator).to_have_url(re.compile(r"/dashboard/sessions/\d+$"))
    expect(creator.get_by_role("heading", name="Watercolour basics")).to_be_visible()
    expect(creator.locator(".page-head .status")).to_have_text("published")
    expect(creator.locator(".flash")).to_contain_text("Published")
    expect_test_mode_banner(creator)
    dashboard_url = creator.url
    screenshot(creator, "03-session-published")

    # 3. An attendee, in their own browser, opens the public page and starts paying with the demo method.
    public_link = creator.locator("dt:text-is('Public page') + dd a")
    expect(public_link).to_have_attribute("href", re.compile(r"^http://127\.0\.0\.1:\d+/s/\d+$"))
    attendee = new_page()
    attendee.on("pageerror", lambda error: page_errors.append(str(error)))
    attendee.goto(public_link.get_attribute("href"))
    expect(attendee.get_by_role("heading", name="Watercolour basics")).to_be_visible()
    expect_test_mode_banner(attendee)
    expect(attendee.locator("dd.price")).to_have_text("€25.00")
    expect(attendee.locator("dd.seats-left")).to_have_text("5")
    checkout = attendee.locator("#checkout")
    checkout.get_by_label("Your name").fill("Grace Student")
    checkout.get_by_label("Email", exact=True).fill("grace@example.com")
    expect(checkout.get_by_label("Test payment (demo)")).to_be_checked()
    screenshot(attendee, "04-public-session-page")
    checkout.get_by_role("button", name="Pay €25.00").click()

    # 4. The sandbox stands in for the provider's card page; paying leads to the ticket with the join link.
    expect(attendee).to_have_url(re.compile(r"/sandbox/pay/"))
    expect(attendee.get_by_role("heading", name="Test payment")).to_be_visible()
    expect(attendee.locator(".sandbox .notice")).to_contain_text("Test mode")
    expect_test_mode_banner(attendee)
    screenshot(attendee, "05-sandbox-pay")
    attendee.get_by_role("button", name=re.compile(r"^Pay €25\.00 \(test\)$")).click()
    expect(attendee).to_have_url(re.compile(r"/t/[^/?]+(\?from=checkout)?$"))
    expect(attendee.locator("#order-status")).to_have_text("paid")
    expect(attendee.locator(".ticket .success")).to_contain_text("€25.00")
    join = attendee.get_by_role("link", name="Join the session")
    expect(join).to_have_attribute("href", re.compile(r"^/j/\d+\.[\w-]+$"))
    response = attendee.request.get(server.url + join.get_attribute("href"), max_redirects=0)
    assert (response.status, response.headers["location"]) == (303, JOIN_LINK)
    expect_test_mode_banner(attendee)
    screenshot(attendee, "06-ticket-paid")

    # 5. Back in the dashboard, the creator sees the paid attendee.
    creator.goto(dashboard_url)
    row = creator.locator("#orders tbody tr", has_text="grace@example.com")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Grace Student")
    expect(row.locator(".status")).to_have_text("paid")
    expect(creator.locator("dl.facts")).to_contain_text("1 taken of 5")
    expect_test_mode_banner(creator)
    screenshot(creator, "07-dashboard-attendee-paid")

    assert page_errors == [], f"JavaScript errors on the pages: {page_errors}"


# -- the attendee's journey in French, and an English buyer of the same session -----------------------------------


def _sentences(language: str) -> list[str]:
    """The sentences of the catalogue in one language (English: the msgids; French: their translations), each as
    the longest stretch of it without a placeholder, when that stretch is long enough to be a sentence."""
    from babel.messages.pofile import read_po

    with (Path(__file__).resolve().parents[2] / "webinar_pay/translations/fr/LC_MESSAGES/messages.po").open("rb") as po:
        catalogue = read_po(po)
    found = set()
    for message in catalogue:
        if not message.id:
            continue
        texts = message.id if language == "en" else message.string
        for text in texts if isinstance(texts, tuple) else (texts,):
            stretch = max(re.split(r"%\(\w+\)[sd]", text), key=len).strip(" .,:;\u00a0\u202f")
            if len(stretch) >= 12 and " " in stretch:
                found.add(stretch)
    return sorted(found)


def _no_sentence_of(language: str, page: Page, where: str, text: str | None = None) -> None:
    shown = " ".join((text if text is not None else page.inner_text("body")).split())
    met = [sentence for sentence in _sentences(language) if " ".join(sentence.split()) in shown]
    assert not met, f"{where}: {language} sentences in a page of the other language: {met}"


def _demo_session(server) -> int:
    from tests.conftest import Api, session_payload
    from webinar_pay.services.creators import create_api_token, create_creator

    with server.app.app_context():
        creator = create_creator("ada@example.com", "Ada Teacher", "correct horse battery", verified=True)
        token = create_api_token(creator)
    api = Api(server.url, token)
    status, body = api.post("/api/v1/sessions", session_payload(join_link=JOIN_LINK))
    assert status == 201, body
    assert api.post(f"/api/v1/sessions/{body['id']}/publish")[0] == 200
    return body["id"]


def _buy(page: Page, url: str, name: str, email: str, labels: dict, screenshot, prefix: str) -> None:
    page.goto(url)
    checkout = page.locator("#checkout")
    checkout.get_by_label(labels["name"]).fill(name)
    checkout.get_by_label(labels["email"], exact=True).fill(email)
    expect(checkout.get_by_label(labels["method"])).to_be_checked()
    screenshot(page, f"{prefix}-1-session-page")
    checkout.get_by_role("button", name=labels["pay"]).click()
    expect(page).to_have_url(re.compile(r"/sandbox/pay/"))
    screenshot(page, f"{prefix}-2-sandbox-pay")
    page.get_by_role("button", name=labels["pay_test"]).click()
    expect(page).to_have_url(re.compile(r"/t/[^/?]+(\?from=checkout)?$"))
    expect(page.locator("#order-status")).to_have_text(labels["paid"])
    expect(page.get_by_role("link", name=labels["join"])).to_be_visible()
    screenshot(page, f"{prefix}-3-ticket-paid")


def test_attendee_journey_in_french_and_an_english_buyer_of_the_same_session(live_server, new_page, screenshot):
    from webinar_pay.models import OutboxMessage
    from webinar_pay.services.outbox.dispatch import dispatch_due

    server = live_server(demo=True)
    session_id = _demo_session(server)
    page_errors: list[str] = []

    french = new_page(locale="fr-FR", timezone_id="America/Toronto")
    french.on("pageerror", lambda error: page_errors.append(str(error)))
    french.goto(f"{server.url}/")
    expect(french.locator("html")).to_have_attribute("lang", "fr")
    expect(french.get_by_role("heading", name="Prochaines sessions en direct")).to_be_visible()
    _no_sentence_of("en", french, "the storefront")
    french.get_by_role("link", name="Watercolour basics").click()
    expect(french.locator("html")).to_have_attribute("lang", "fr")
    expect(french.locator("dd.price")).to_have_text("25,00\u00a0€")
    _no_sentence_of("en", french, "the session page")
    labels = {
        "name": "Votre nom",
        "email": "E-mail",
        "method": "Paiement test (démo)",
        "pay": "Payer 25,00 €",
        "pay_test": re.compile(r"^Payer 25,00.€ \(test\)$"),
        "paid": "payée",
        "join": "Rejoindre la session",
    }
    _buy(french, french.url, "Camille Élève", "camille@example.com", labels, screenshot, "fr")
    _no_sentence_of("en", french, "the ticket")

    english = new_page(locale="en-GB", timezone_id="Europe/London")
    english.on("pageerror", lambda error: page_errors.append(str(error)))
    labels = {
        "name": "Your name",
        "email": "Email",
        "method": "Test payment (demo)",
        "pay": "Pay €25.00",
        "pay_test": re.compile(r"^Pay €25\.00 \(test\)$"),
        "paid": "paid",
        "join": "Join the session",
    }
    _buy(english, f"{server.url}/s/{session_id}", "Grace Student", "grace@example.com", labels, screenshot, "en")
    expect(english.locator("html")).to_have_attribute("lang", "en")
    _no_sentence_of("fr", english, "the English ticket")

    # The worker sends the confirmations, with no request to take a language from: each in its buyer's.
    with server.app.app_context():
        dispatch_due()
        from sqlalchemy import select

        from webinar_pay.extensions import db

        sent = {row.sent_to: (row.sent_subject, row.sent_text, row.sent_html) for row in
                db.session.scalars(select(OutboxMessage).where(OutboxMessage.sent_subject.is_not(None)))}  # fmt: skip
    subject, text, html = sent["camille@example.com"]
    assert subject == "C’est confirmé\u00a0: Watercolour basics"
    assert "Votre heure\u00a0:" in text and "heure" in text
    _no_sentence_of("en", french, "the French email", f"{subject} {text}")
    subject, text, html = sent["grace@example.com"]
    assert subject == "You are in: Watercolour basics"
    _no_sentence_of("fr", english, "the English email", f"{subject} {text}")

    french.goto(f"{server.url}/dev/mailbox/")
    french.get_by_role("link", name="C’est confirmé").click()
    expect(french.locator("pre.email-text")).to_contain_text("Bonjour Camille Élève,")
    screenshot(french, "fr-4-confirmation-email")

    # The switch: the French visitor turns the page to English, and it stays so.
    french.goto(f"{server.url}/s/{session_id}")
    french.locator("nav.languages").get_by_role("link", name="English").click()
    expect(french).to_have_url(re.compile(rf"/s/{session_id}$"))
    expect(french.locator("html")).to_have_attribute("lang", "en")
    expect(french.get_by_role("heading", name="Get your seat")).to_be_visible()
    screenshot(french, "fr-5-switched-to-english")

    assert page_errors == [], f"JavaScript errors on the pages: {page_errors}"
