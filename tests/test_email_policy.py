"""The emails say what the session's policy allows: self-cancellation from the ticket when the session offers it,
a reply to the creator otherwise; a free seat never hears of refunds; a partial refund is told. Real SMTP (aiosmtpd),
seats bought over HTTP through the fake Stripe."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import csrf_in
from tests.test_refunds import Shop


@pytest.fixture
def shop(live_server, create_creator, fake_stripe, smtp) -> Shop:
    return Shop(live_server(**smtp.config), create_creator()[1], "stripe", stripe=fake_stripe)


def _only(smtp, address: str, subject_start: str):
    found = [mail for mail in smtp.to(address) if mail.subject.startswith(subject_start)]
    assert len(found) == 1, [mail.subject for mail in smtp.to(address)]
    return found[0]


def _both(mail) -> str:
    return mail.text + "\n" + mail.html


@pytest.mark.parametrize(
    ("price", "hours", "says", "never"),
    [
        (3000, 24, "Cancel from your ticket page until", "Reply to this email to ask"),
        (3000, None, "Reply to this email to ask Ada Teacher for a refund.", "Cancel from your ticket page"),
        (0, 24, "Cancel your registration from your ticket page until", "refund"),
        (0, None, "Reply to this email to let Ada Teacher know.", "refund"),
    ],
    ids=["paid_with_policy", "paid_without", "free_with_policy", "free_without"],
)
def test_the_confirmation_follows_the_cancellation_policy(shop, smtp, price, hours, says, never):
    extra = {} if hours is None else {"cancellation_hours": hours}
    session_id = shop.session(price=price, **extra)
    shop.paid_order(session_id)
    shop.dispatch()
    confirmation = _only(smtp, "bo@example.com", "You are in")
    for body in (confirmation.text, confirmation.html):
        flat = " ".join(body.split())
        assert says in flat
        assert never.lower() not in flat.lower()
    if hours:
        assert "you are refunded in full, automatically" in _both(confirmation) or price == 0


def test_a_free_registration_cancelled_by_its_attendee_is_never_called_a_refund(shop, smtp):
    session_id = shop.session(price=0, cancellation_hours=0)
    checkout = shop.paid_order(session_id)
    browser = requests.Session()
    page = browser.get(checkout["ticket_url"] + "/cancel", timeout=10).text
    browser.post(checkout["ticket_url"] + "/cancel", data={"csrf_token": csrf_in(page), "confirm": "yes"}, timeout=10)
    shop.dispatch()
    notice = _only(smtp, "bo@example.com", "Registration cancelled")
    assert notice.subject == "Registration cancelled: Watercolour basics"
    assert "Your registration for Watercolour basics is cancelled." in notice.text
    assert "refund" not in (notice.subject + _both(notice)).lower()
    assert "METHOD:CANCEL" in notice.ics


def test_a_free_session_moved_or_cancelled_says_nothing_of_refunds(shop, smtp):
    session_id = shop.session(price=0)
    shop.paid_order(session_id)
    shop.dispatch()
    shop.cancel_session(session_id)
    shop.dispatch()
    cancelled = _only(smtp, "bo@example.com", "Cancelled")
    assert "refund" not in _both(cancelled).lower()


def test_a_partial_refund_is_emailed_and_the_seat_stays(shop, smtp):
    session_id = shop.session(price=4000)
    order_id = shop.paid_order(session_id)["order_id"]
    status, body = shop.refund(order_id, {"amount": 1500})
    assert status == 201 and body["order"]["status"] == "paid", body
    assert shop.emails(order_id)[f"partial_refund:{body['refund']['id']}"] == "pending"
    shop.dispatch()
    notice = _only(smtp, "bo@example.com", "Partial refund")
    assert notice.subject == "Partial refund: Watercolour basics"
    text = " ".join(notice.text.split())
    assert "Ada Teacher refunded €15.00 of your payment of €40.00 for Watercolour basics." in text
    assert "Your seat is still yours" in text and "invite.ics" not in notice.message.as_string()

    # A second partial refund is a second email; the rest of the money makes the order refunded: the refund email.
    status, second = shop.refund(order_id, {"amount": 500})
    assert status == 201
    shop.dispatch()
    assert len([mail for mail in smtp.to("bo@example.com") if mail.subject.startswith("Partial refund")]) == 2
    shop.refund(order_id)
    shop.dispatch()
    assert _only(smtp, "bo@example.com", "Refund:").subject == "Refund: Watercolour basics"


def test_the_creator_previews_the_partial_refund_email(shop):
    session_id = shop.session(price=4000)
    browser = shop.dashboard()
    index = browser.get(f"{shop.url}/dashboard/sessions/{session_id}/emails/", timeout=10).text
    assert "Partial refund" in index
    preview = browser.get(f"{shop.url}/dashboard/sessions/{session_id}/emails/preview/partial_refund", timeout=10)
    assert preview.status_code == 200 and "refunded €20.00 of your payment of €40.00" in preview.text
