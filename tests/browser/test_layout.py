"""Every page of both journeys at a phone's size (390×844) and a desktop's: no sideways scrolling, a skip link and a
visible focus, a label on every field, status badges readable (contrast of 4.5:1 at least), and on the session page
the price and the Pay button above the fold on the phone. Screenshots of each page and size are kept.

Uses Debian's `chromium` (tests/install-test-packages.sh installs it); skipped when it is not there.
"""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.conftest import Api, csrf_in, session_payload

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LONG_DESCRIPTION = (
    "Two hours of brushes, paper and water.\nBring a round brush (size 8), cold-pressed paper and two jars.\n\n"
    "We start with washes, then glazes, then a small landscape: https://example.com/a-very-long-address-that-"
    "should-wrap-rather-than-push-the-page-sideways-on-a-phone/and/even/further"
)


def _contrast(foreground: str, background: str) -> float:
    def luminance(colour: str) -> float:
        r, g, b = (int(x) / 255 for x in re.findall(r"\d+(?:\.\d+)?", colour)[:3])
        channel = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * channel[0] + 0.7152 * channel[1] + 0.0722 * channel[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


CHECKS = """() => {
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const unlabelled = [...document.querySelectorAll("input, select, textarea")]
    .filter((el) => el.type !== "hidden" && visible(el))
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label")
                    && !el.getAttribute("aria-labelledby"))
    .map((el) => el.outerHTML.slice(0, 120));
  const badges = [...document.querySelectorAll(".status")].filter(visible).map((el) => {
    const style = getComputedStyle(el);
    return [el.textContent.trim(), style.color, style.backgroundColor];
  });
  return {scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth, unlabelled, badges};
}"""


def check_page(page: Page, url: str, name: str, size: str, screenshot) -> None:
    page.goto(url)
    found = page.evaluate(CHECKS)
    assert found["scrollWidth"] <= found["width"], f"{name} at {size}: {found['scrollWidth']} px wide"
    assert found["unlabelled"] == [], f"{name}: fields without a label: {found['unlabelled']}"
    for text, colour, background in found["badges"]:
        assert _contrast(colour, background) >= 4.5, f"{name}: badge {text!r} {colour} on {background}"
    screenshot(page, f"layout-{size}-{name}")
    # The first Tab reaches the skip link, shown with a visible focus ring; following it lands on the content.
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "() => { const el = document.activeElement; const s = getComputedStyle(el);"
        " const box = el.getBoundingClientRect();"
        " return [el.className, s.outlineStyle, parseFloat(s.outlineWidth),"
        " box.top >= 0 && box.bottom <= innerHeight]; }"
    )
    assert focused[0] == "skip-link" and focused[1] != "none" and focused[2] >= 2 and focused[3], (name, focused)


@pytest.fixture
def shop(live_server):
    """The demo shop (test mode banner and all) with a paid and a free session, a paid seat and a dispatched email."""
    from webinar_pay.services.creators import create_api_token, create_creator
    from webinar_pay.services.outbox.dispatch import dispatch_due

    server = live_server(demo=True)
    with server.app.app_context():
        creator = create_creator("ada@example.com", "Ada Teacher", PASSWORD, "Europe/Paris", verified=True)
        token = create_api_token(creator)
    api = Api(server.url, token)
    ids = {}
    for key, price in (("paid", 2500), ("free", 0)):
        payload = session_payload(price=price, description=LONG_DESCRIPTION, cancellation_hours=24,
                                  title="Watercolour basics: washes, glazes and a small landscape")  # fmt: skip
        status, body = api.post("/api/v1/sessions", payload)
        assert status == 201, body
        assert api.post(f"/api/v1/sessions/{body['id']}/publish")[0] == 200
        ids[key] = body["id"]
    status, checkout = Api(server.url).post(
        f"/api/v1/sessions/{ids['paid']}/checkout", {"name": "Grace Student", "email": "grace@example.com"}
    )
    assert status == 201, checkout
    browser = requests.Session()
    page = browser.get(checkout["checkout_url"], timeout=10).text
    browser.post(checkout["checkout_url"], data={"csrf_token": csrf_in(page), "action": "pay"}, timeout=10)
    with server.app.app_context():
        dispatch_due()
    return server, ids, checkout


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_page_fits_the_screen_and_is_usable_with_a_keyboard(shop, new_page, screenshot, size):
    server, ids, checkout = shop
    viewport = PHONE if size == "phone" else DESKTOP
    url = server.url
    attendee = new_page(viewport=viewport)
    order = checkout["order_id"]

    # The buyer's journey.
    for name, path in [
        ("storefront", "/"),
        ("session", f"/s/{ids['paid']}"),
        ("session-free", f"/s/{ids['free']}"),
        ("creator-page", "/c/ada-teacher"),
        ("ticket", checkout["ticket_url"].removeprefix(url)),
        ("ticket-cancel", checkout["ticket_url"].removeprefix(url) + "/cancel"),
        ("signup", "/signup"),
        ("login", "/login"),
        ("not-found", "/no-such-page"),
        ("mailbox", "/dev/mailbox/"),
    ]:
        check_page(attendee, url + path, name, size, screenshot)
    attendee.goto(url + "/dev/mailbox/")
    attendee.locator("#mailbox a").first.click()
    check_page(attendee, attendee.url, "mailbox-email", size, screenshot)

    # The price and the Pay button are on the first screen, before any scrolling.
    attendee.goto(f"{url}/s/{ids['paid']}")
    pay = attendee.get_by_role("button", name="Pay €25.00").bounding_box()
    price = attendee.locator(".price-tag").bounding_box()
    assert price["y"] + price["height"] <= viewport["height"], price
    parts = (".test-mode-banner", ".site-header", ".session-head", "#checkout h2", "#consents", ".pay-with")
    layout = {part: attendee.locator(part).first.bounding_box() for part in parts}
    bottom = pay["y"] + pay["height"]
    assert bottom <= viewport["height"], f"the Pay button ends at {bottom} px: {layout}"

    # The creator's journey.
    creator = new_page(viewport=viewport)
    creator.goto(url + "/login")
    creator.get_by_label("Email").fill("ada@example.com")
    creator.get_by_label("Password").fill(PASSWORD)
    creator.get_by_role("button", name="Log in").click()
    expect(creator).to_have_url(re.compile(r"/dashboard/?$"))
    session = ids["paid"]
    for name, path in [
        ("dashboard", "/dashboard/"),
        ("new-session", "/dashboard/sessions/new"),
        ("session-detail", f"/dashboard/sessions/{session}"),
        ("session-edit", f"/dashboard/sessions/{session}/edit"),
        ("emails", f"/dashboard/sessions/{session}/emails/"),
        ("email-preview", f"/dashboard/sessions/{session}/emails/preview/confirmation"),
        ("order", f"/dashboard/orders/{order}"),
        ("cancel-session", f"/dashboard/sessions/{session}/cancel"),
        ("profile", "/dashboard/profile"),
        ("account", "/account"),
    ]:
        check_page(creator, url + path, name, size, screenshot)

    # The refund's confirmation, reached as the creator does: the amount typed, then asked.
    creator.goto(f"{url}/dashboard/orders/{order}")
    creator.get_by_label(re.compile(r"^Amount to give back")).fill("10")
    creator.get_by_role("button", name=re.compile(r"^Refund through")).click()
    expect(creator.locator("#confirm-refund")).to_be_visible()
    found = creator.evaluate(CHECKS)
    assert found["scrollWidth"] <= found["width"] and found["unlabelled"] == []
    screenshot(creator, f"layout-{size}-refund-confirm")


def test_the_organisers_time_shows_only_when_it_is_not_the_visitors(shop, new_page):
    server, ids, _checkout = shop
    for zone, shown in (("Europe/Paris", False), ("America/Toronto", True)):  # the session is in Europe/Paris
        page = new_page(timezone_id=zone)
        page.goto(f"{server.url}/s/{ids['paid']}")
        organiser = page.locator("dt", has_text="Organiser's time")
        if shown:
            expect(organiser).to_be_visible()
        else:
            expect(organiser).to_be_hidden()
        expect(page.locator(".session-head .when time")).to_contain_text(zone.split("/")[1])
