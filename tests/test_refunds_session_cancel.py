"""The creator cancels a session: every paid attendee refunded (through both providers), told, and let out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests

from tests.test_refunds import Shop, provider_refunds
from webinar_pay.models import utcnow
from webinar_pay.services.refunds import process_refunds


@pytest.fixture
def shop(live_server, create_creator, paypal_config, fake_stripe, fake_paypal):
    server = live_server(**paypal_config)
    return Shop(server, create_creator()[1], "stripe", stripe=fake_stripe, paypal=fake_paypal)


def test_cancelled_session_refunds_everyone_with_one_provider_failing_at_first(shop, fake_paypal):
    session_id = shop.session(price=2000, capacity=5)
    card = [shop.paid_order(session_id, f"card{i}@example.com") for i in range(2)]
    shop.provider = "paypal"
    paypal = shop.paid_order(session_id, "pp@example.com")
    shop.provider = "stripe"
    orders = [c["order_id"] for c in card] + [paypal["order_id"]]
    assert shop.seats_taken(session_id) == 3

    unconfirmed = shop.cancel_session(session_id, confirm=False)
    assert "Tick the box" in unconfirmed.text and shop.order(orders[0])["status"] == "paid"
    done = shop.cancel_session(session_id)
    assert done.status_code == 200 and "3 attendees are being refunded" in done.text
    assert 'id="refund-progress"' in done.text and "0 of 3 sent, 3 on their way" in done.text
    for order_id in orders:
        order = shop.order(order_id)
        assert order["status"] == "refunded" and order["enrollment"]["status"] == "cancelled"
        emails = shop.emails(order_id)
        assert emails["cancelled"] == "pending" and emails["reminder:60"] == "cancelled" and "refund" not in emails
    assert shop.seats_taken(session_id) == 0
    assert "This session was cancelled" in requests.get(f"{shop.url}/s/{session_id}", timeout=10).text
    join = requests.get(shop.join_url(paypal["order_id"]), allow_redirects=False, timeout=10)
    assert join.status_code == 403

    fake_paypal.fail_next.append((503, "SERVICE_UNAVAILABLE", "PayPal is down for maintenance"))
    assert shop.db(lambda: process_refunds()) == 2  # the worker's tick: both card refunds go through
    assert shop.refunds(paypal["order_id"]) == [(2000, "pending")]
    page = shop.dashboard().get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    assert "2 of 3 sent, 1 on their way, 0 failed" in page
    history = shop.dashboard().get(f"{shop.url}/dashboard/orders/{paypal['order_id']}", timeout=10).text
    assert "will retry" in history and "PayPal is down" in history

    assert shop.db(lambda: process_refunds(now=utcnow() + timedelta(minutes=10))) == 1
    for order_id in orders:
        assert shop.refunds(order_id) == [(2000, "succeeded")]
    shop.provider = "paypal"
    assert provider_refunds(shop, paypal["order_id"]) == [2000]
    shop.provider = "stripe"
    assert [provider_refunds(shop, c["order_id"]) for c in card] == [[2000], [2000]]
    page = shop.dashboard().get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    assert "3 of 3 sent, 0 on their way, 0 failed" in page
    assert 'id="cancel-session"' not in page


def test_a_refund_refused_for_good_is_shown_and_can_be_retried(shop):
    session_id = shop.session(price=2000)
    order_id = shop.paid_order(session_id)["order_id"]
    shop.cancel_session(session_id)
    shop.stripe.fail_next.append((400, "invalid_request_error", "Your account cannot refund right now"))
    assert shop.db(lambda: process_refunds()) == 0
    assert shop.refunds(order_id) == [(2000, "failed")]
    browser = shop.dashboard()
    page = browser.get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    assert "1 failed" in page and "cannot refund right now" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    retry = re.search(r'action="(/dashboard/orders/\d+/refunds/\d+/retry)"', page)[1]
    browser.post(shop.url + retry, data={"csrf_token": token, "next": "https://evil.example/"}, timeout=10)
    assert shop.db(lambda: process_refunds()) == 1
    assert shop.refunds(order_id) == [(2000, "succeeded")]


def test_a_cancelled_session_cannot_be_cancelled_again(shop):
    session_id = shop.session(price=2000)
    shop.cancel_session(session_id)
    browser = shop.dashboard()
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get(f"{shop.url}/dashboard/", timeout=10).text)
    token = (
        token[1]
        if token
        else re.search(
            r'name="csrf_token" value="([^"]+)"', browser.get(f"{shop.url}/dashboard/profile", timeout=10).text
        )[1]
    )
    again = browser.post(
        f"{shop.url}/dashboard/sessions/{session_id}/cancel", data={"csrf_token": token, "confirm": "yes"}, timeout=10
    )
    assert again.status_code == 409 and "has not started yet can be cancelled" in again.text
    status, body = shop.creator.get(f"/api/v1/sessions/{session_id}")
    assert body["status"] == "cancelled"
