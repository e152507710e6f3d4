"""Irreversible actions ask first and say what will happen: an attendee cancelling their seat, a creator's refund
(an amount typed, never prefilled), a session's cancellation. Over HTTP against the app and the fake Stripe."""

from __future__ import annotations

import html
import re

import pytest
import requests

from tests.conftest import csrf_in
from tests.test_refunds import Shop


@pytest.fixture
def shop(live_server, create_creator, fake_stripe) -> Shop:
    return Shop(live_server(), create_creator()[1], "stripe", stripe=fake_stripe)


def _text(page: str) -> str:
    """What a person reads: tags out, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


# -- the attendee cancels their seat ---------------------------------------------------------------------------------


def test_self_cancel_asks_first_and_says_who_is_refunded_and_emailed(shop):
    session_id = shop.session(price=3000, cancellation_hours=24)
    checkout = shop.paid_order(session_id)
    ticket_url = checkout["ticket_url"]
    browser = requests.Session()
    ticket = browser.get(ticket_url, timeout=10).text
    button = re.search(r'<a class="button" id="self-cancel" href="([^"]+)"', ticket)
    assert button, "the ticket's cancel button is a link to the confirmation"

    confirm = browser.get(shop.url + button[1], timeout=10)
    text = _text(confirm.text)
    assert confirm.status_code == 200 and confirm.headers["Cache-Control"] == "no-store"
    assert "Cancel your seat?" in text and "This cannot be undone." in text
    assert "€30.00 is refunded to the card you paid with." in text
    assert "We email bo@example.com to confirm the cancellation." in text
    assert "Your seat goes back on sale and your join link stops working." in text
    assert shop.order(checkout["order_id"])["status"] == "paid"  # looking changes nothing

    # A form posted without the confirmation (an old tab, a crafted post) only leads to the question.
    unconfirmed = browser.post(ticket_url + "/cancel", data={"csrf_token": csrf_in(confirm.text)},
                               allow_redirects=False, timeout=10)  # fmt: skip
    assert unconfirmed.status_code == 303 and unconfirmed.headers["Location"].endswith("/cancel")
    assert shop.order(checkout["order_id"])["status"] == "paid" and shop.refunds(checkout["order_id"]) == []

    form = {"csrf_token": csrf_in(confirm.text), "confirm": "yes"}
    done = browser.post(ticket_url + "/cancel", data=form, timeout=30)
    assert done.status_code == 200 and "This order was refunded" in done.text
    assert shop.refunds(checkout["order_id"]) == [(3000, "succeeded")]
    assert shop.emails(checkout["order_id"])["refund"] == "pending"

    again = browser.get(ticket_url + "/cancel", timeout=10)
    assert again.status_code == 409 and "nothing to cancel" in again.text


def test_a_free_seat_is_cancelled_without_any_word_of_a_refund(shop):
    session_id = shop.session(price=0, cancellation_hours=0)
    checkout = shop.paid_order(session_id)
    confirm = requests.get(checkout["ticket_url"] + "/cancel", timeout=10)
    text = _text(confirm.text)
    assert confirm.status_code == 200 and "Yes, cancel my registration" in text
    assert "refund" not in text.lower()


def test_the_confirmation_says_why_when_the_policy_does_not_allow_it(shop):
    checkout = shop.paid_order(shop.session(price=3000))
    refused = requests.get(checkout["ticket_url"] + "/cancel", timeout=10)
    assert refused.status_code == 409 and "does not allow cancellations" in refused.text
    assert 'id="confirm-self-cancel"' not in refused.text


# -- the creator refunds -------------------------------------------------------------------------------------------


def _refund_form(browser: requests.Session, shop: Shop, order_id: int, amount: str) -> dict:
    page = browser.get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)[1]
    return {"csrf_token": csrf_in(page), "idempotency_key": key, "amount": amount}


def test_a_creator_types_the_amount_and_confirms_a_partial_then_a_full_refund(shop):
    session_id = shop.session(price=4000)
    order_id = shop.paid_order(session_id)["order_id"]
    browser = shop.dashboard()
    page = browser.get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    field = re.search(r'<input id="amount"[^>]*>', page)[0]
    assert 'value=""' in field and "Up to €40.00" in _text(page)

    form = _refund_form(browser, shop, order_id, "")
    empty = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data=form, timeout=10)
    assert empty.status_code == 422 and shop.refunds(order_id) == []
    too_much = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data={**form, "amount": "40.01"},
                            timeout=10)  # fmt: skip
    assert too_much.status_code == 422 and "Enter an amount up to €40.00." in _text(too_much.text)
    assert 'id="confirm-refund"' not in too_much.text

    asked = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data={**form, "amount": "15"}, timeout=10)
    text = _text(asked.text)
    assert asked.status_code == 200 and "Refund €15.00 to Bo Buyer?" in text
    assert "€15.00 goes back to Bo Buyer (bo@example.com) through Stripe." in text
    assert "Bo Buyer keeps the seat, the join link and the reminders" in text and "€40.00 left to refund" in text
    assert "Bo Buyer gets an email saying how much was refunded." in text
    assert shop.refunds(order_id) == []  # nothing sent before the creator confirms
    confirmed = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', asked.text))
    assert confirmed["amount"] == "15.00" and confirmed["confirm"] == "yes"
    assert confirmed["idempotency_key"] == form["idempotency_key"]
    done = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data=confirmed, timeout=30)
    assert done.status_code == 200 and "Refunded €15.00." in done.text
    assert shop.refunds(order_id) == [(1500, "succeeded")] and shop.order(order_id)["status"] == "paid"

    form = _refund_form(browser, shop, order_id, "25.00")
    asked = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data=form, timeout=10)
    text = _text(asked.text)
    assert "This is everything left of the €40.00 paid" in text and "the seat goes back on sale" in text
    assert "Bo Buyer gets the refund email." in text
    confirmed = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', asked.text))
    browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data=confirmed, timeout=30)
    assert shop.order(order_id)["status"] == "refunded" and shop.seats_taken(session_id) == 0


# -- the creator cancels a session -----------------------------------------------------------------------------------


def test_cancelling_a_session_says_who_is_refunded_and_emailed_before_it_happens(shop):
    session_id = shop.session(price=2000, capacity=5)
    orders = [shop.paid_order(session_id, f"a{i}@example.com")["order_id"] for i in range(2)]
    status, _pending = shop.checkout(session_id, "late@example.com")  # paying right now
    assert status == 201
    browser = shop.dashboard()
    detail = browser.get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    link = re.search(r'<a class="button danger" href="([^"]+)" id="cancel-session">', detail)
    assert link and 'type="checkbox"' not in detail

    confirm = browser.get(shop.url + link[1], timeout=10)
    text = _text(confirm.text)
    assert confirm.status_code == 200 and "Cancel Watercolour basics?" in text
    assert "2 attendees are refunded in full: €40.00 in all" in text
    assert "2 attendees get the cancellation email" in text
    assert "1 buyer is paying right now: a payment that still arrives is refunded automatically." in text
    assert '<label for="confirm">' in confirm.text
    assert all(shop.order(order_id)["status"] == "paid" for order_id in orders)

    unticked = browser.post(f"{shop.url}/dashboard/sessions/{session_id}/cancel",
                            data={"csrf_token": csrf_in(confirm.text)}, timeout=10)  # fmt: skip
    assert "Tick the box to confirm the cancellation." in unticked.text and 'id="confirm-cancel"' in unticked.text
    assert shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["status"] == "published"

    form = {"csrf_token": csrf_in(confirm.text), "confirm": "yes"}
    done = browser.post(f"{shop.url}/dashboard/sessions/{session_id}/cancel", data=form, timeout=30)
    assert "2 attendees are being refunded" in done.text
    assert all(shop.emails(order_id)["cancelled"] == "pending" for order_id in orders)
    # Once cancelled, the question is not asked again.
    again = browser.get(shop.url + link[1], timeout=10)
    assert 'id="confirm-cancel"' not in again.text and 'id="cancel-session"' not in again.text


def test_cancelling_a_free_or_empty_session_promises_no_refund(shop):
    free = shop.session(price=0)
    shop.paid_order(free)
    browser = shop.dashboard()
    text = _text(browser.get(f"{shop.url}/dashboard/sessions/{free}/cancel", timeout=10).text)
    assert "1 attendee's seat is cancelled" in text and "1 attendee gets the cancellation email" in text
    assert "refunded in full" not in text

    empty = shop.session(price=2000)
    text = _text(browser.get(f"{shop.url}/dashboard/sessions/{empty}/cancel", timeout=10).text)
    assert "Nobody has a seat yet: nobody is refunded or emailed." in text
