"""The ticket page: "free" said plainly for free seats, add to calendar (Google, Outlook, an .ics download), and the
session page's "resend my ticket", which never tells whether an address booked a seat. Over HTTP, real SMTP."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import csrf_in
from tests.test_refunds import Shop


@pytest.fixture
def shop(live_server, create_creator, fake_stripe, smtp) -> Shop:
    server = live_server(**smtp.config, RATELIMIT_ENABLED=True, RATELIMIT_RESEND="2 per hour", TRUSTED_PROXIES=1)
    return Shop(server, create_creator()[1], "stripe", stripe=fake_stripe)


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def _link(page: str, label: str) -> str:
    found = re.search(rf'<a class="button" href="([^"]+)"[^>]*>{re.escape(label)}</a>', page)
    assert found, f"no {label} link"
    return html.unescape(found[1])


# -- free seats --------------------------------------------------------------------------------------------------


def test_a_free_ticket_says_free_and_registered_never_paid_or_refund(shop):
    session_id = shop.session(price=0, cancellation_hours=0)
    checkout = shop.paid_order(session_id)
    text = _text(requests.get(checkout["ticket_url"], timeout=10).text)
    assert "Status: registered" in text and "Your registration is confirmed." in text
    assert f"Registration #{checkout['order_id']} · Free" in text
    assert "You can cancel your registration until" in text and "Cancel my registration" in text
    for word in ("paid", "refund", "€0.00", "payment"):
        assert word not in text.lower(), word
    sales = _text(requests.get(f"{shop.url}/s/{session_id}", timeout=10).text)
    assert "refund" not in sales.lower()


# -- add to calendar ----------------------------------------------------------------------------------------------


def test_the_ticket_adds_the_session_to_google_outlook_and_other_calendars(shop):
    session_id = shop.session(price=2500, duration_minutes=90)
    checkout = shop.paid_order(session_id)
    page = requests.get(checkout["ticket_url"], timeout=10).text
    starts = shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["starts_at"]
    start = re.sub(r"[-:]", "", starts.replace("+00:00", "Z"))
    join = shop.join_url(checkout["order_id"])
    ticket_token = checkout["ticket_url"].rsplit("/", 1)[1]

    google = urlsplit(_link(page, "Google Calendar"))
    assert google.netloc == "calendar.google.com"
    fields = parse_qs(google.query)
    assert fields["action"] == ["TEMPLATE"] and fields["text"] == ["Watercolour basics"]
    assert fields["dates"][0].startswith(start + "/") and fields["location"] == [join]

    outlook = urlsplit(_link(page, "Outlook"))
    assert outlook.netloc == "outlook.live.com"
    fields = parse_qs(outlook.query)
    assert fields["subject"] == ["Watercolour basics"] and fields["startdt"] == [starts.replace("+00:00", "Z")]
    for link in (google, outlook):
        assert ticket_token not in link.query  # calendars get shared: the join link only

    download = requests.get(shop.url + _link(page, "Apple, other calendars (.ics)"), timeout=10)
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("text/calendar")
    assert download.headers["Cache-Control"] == "no-store"
    ics = download.text.replace("\r\n ", "")
    assert "BEGIN:VEVENT" in ics and f"DTSTART:{start}" in ics and f"URL:{join}" in ics and ticket_token not in ics
    assert f"UID:order-{checkout['order_id']}@127.0.0.1" in ics  # the entry the confirmation email adds

    shop.refund(checkout["order_id"])
    page = requests.get(checkout["ticket_url"], timeout=10).text
    assert 'id="add-to-calendar"' not in page
    assert requests.get(checkout["ticket_url"] + "/invite.ics", timeout=10).status_code == 404


# -- resend my ticket ----------------------------------------------------------------------------------------------


def _resend(shop: Shop, session_id: int, email: str, client: str = "198.51.100.7") -> requests.Response:
    browser = requests.Session()
    headers = {"X-Forwarded-For": client}
    page = browser.get(f"{shop.url}/s/{session_id}", headers=headers, timeout=10).text
    assert 'id="resend-ticket"' in page and '<label for="resend_email">' in page
    return browser.post(f"{shop.url}/s/{session_id}/resend", data={"csrf_token": csrf_in(page), "email": email},
                        headers=headers, timeout=10)  # fmt: skip


def test_resend_sends_the_ticket_again_and_answers_the_same_for_anyone(shop, smtp):
    session_id = shop.session(price=2500)
    shop.paid_order(session_id, email="bo@example.com")
    shop.dispatch()
    assert len(smtp.to("bo@example.com")) == 1

    booked = _resend(shop, session_id, " Bo@Example.com ", client="198.51.100.1")
    stranger = _resend(shop, session_id, "eve@example.com", client="198.51.100.2")
    assert booked.status_code == stranger.status_code == 200
    answer = "its ticket is on its way there again"
    assert answer in booked.text and answer in stranger.text
    assert booked.text.replace("bo@example.com", "X") == stranger.text.replace("eve@example.com", "X").replace(
        csrf_in(stranger.text), csrf_in(booked.text)
    )

    shop.dispatch()
    again = smtp.to("bo@example.com")
    assert len(again) == 2 and again[1].subject == again[0].subject
    assert "/t/" in again[1].text and "/j/" in again[1].text  # the ticket and the join link
    assert smtp.to("eve@example.com") == []


def test_resend_refuses_a_bad_address_and_is_rate_limited_per_client_and_per_address(shop, smtp):
    session_id = shop.session(price=2500)
    bad = _resend(shop, session_id, "not an address")
    assert bad.status_code == 422 and "Enter a valid email address." in bad.text

    # One client (the bad address counted once already): one more, then refused, whoever the address is.
    assert _resend(shop, session_id, "a@example.com").status_code == 200
    refused = _resend(shop, session_id, "b@example.com")
    assert refused.status_code == 429 and "Too many attempts" in refused.text

    # One address from many clients: refused after the same number.
    assert _resend(shop, session_id, "c@example.com", client="203.0.113.1").status_code == 200
    assert _resend(shop, session_id, "c@example.com", client="203.0.113.2").status_code == 200
    assert _resend(shop, session_id, "c@example.com", client="203.0.113.3").status_code == 429
