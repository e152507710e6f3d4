"""Card payments end to end over HTTP: our app, the real `stripe` library and a fake Stripe on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from tests.conftest import LiveShop, stripe_session_id
from webinar_pay.extensions import db
from webinar_pay.models import LiveSession, OrderLog, ProviderEvent, Refund, utcnow
from webinar_pay.services.orders import expire_holds
from webinar_pay.services.refunds import process_refunds


class Shop(LiveShop):
    def refund_of(self, order_id: int) -> dict:
        def read():
            refund = db.session.scalar(select(Refund).where(Refund.order_id == order_id))
            return {c: getattr(refund, c) for c in ("status", "provider_refund_id", "last_error", "attempts")}

        return self.db(read)


@pytest.fixture
def shop(live_server, create_creator) -> Shop:
    """A running app selling by card through the fake Stripe."""
    return Shop(live_server(), create_creator()[1])


def test_card_payment_journey(shop, fake_stripe):
    session_id = shop.session(price=4900, currency="EUR")
    status, checkout = shop.checkout(session_id)
    assert status == 201
    assert checkout["status"] == "pending"
    assert checkout["checkout_url"].startswith(fake_stripe.base_url + "/pay/cs_test_")
    assert shop.seats_taken(session_id) == 1

    cs = fake_stripe.sessions[stripe_session_id(checkout)]
    order_id = checkout["order_id"]
    assert cs["client_reference_id"] == str(order_id)
    assert cs["metadata"] == {"order_id": str(order_id)}
    assert cs["amount_total"] == 4900 and cs["currency"] == "eur" and cs["mode"] == "payment"
    assert any(key.startswith(f"checkout-order-{order_id}-") for key in fake_stripe.idempotency_keys)
    hold_expires = checkout["hold_expires_at"]
    assert abs(cs["expires_at"] - _timestamp(hold_expires) + 60) <= 1  # Stripe's page closes a minute before the hold

    ticket = requests.get(checkout["ticket_url"] + "?from=checkout", timeout=10)
    assert "pending" in ticket.text and "waiting for the payment provider" in ticket.text
    join_link = shop.join_url(order_id)
    early = requests.get(join_link, allow_redirects=False, timeout=10)
    assert early.status_code == 403 and "not paid yet" in early.text
    assert shop.order(order_id)["status"] == "pending"  # the success page confirms nothing

    event = fake_stripe.complete_session(cs["id"])
    response = shop.webhook(event)
    assert response == "paid"
    order = shop.order(order_id)
    assert order["status"] == "paid" and order["amount"] == 4900
    assert order["enrollment"] == {"status": "enrolled", "join_url": "https://meet.example.com/watercolour"}
    assert fake_stripe.payment_intents[cs["payment_intent"]]["metadata"] == {"order_id": str(order_id)}
    ticket = requests.get(checkout["ticket_url"], timeout=10)
    assert "You're in" in ticket.text and 'href="/j/' in ticket.text
    joined = requests.get(join_link, allow_redirects=False, timeout=10)
    assert (joined.status_code, joined.headers["Location"]) == (303, "https://meet.example.com/watercolour")
    assert ticket.headers["Cache-Control"] == "no-store"

    again = shop.webhook(event)
    assert again == "duplicate"
    paid_log = shop.db(lambda: db.session.scalar(
        select(func.count()).select_from(OrderLog).where(OrderLog.order_id == order_id, OrderLog.to_status == "paid")
    ))  # fmt: skip
    assert paid_log == 1
    assert shop.seats_taken(session_id) == 1


def _timestamp(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def test_bad_signature_is_refused_and_changes_nothing(shop, fake_stripe):
    session_id = shop.session()
    _status, checkout = shop.checkout(session_id)
    forged = fake_stripe.complete_session(stripe_session_id(checkout)).forged()
    response = forged.post(shop.url + "/webhooks/stripe")
    assert response.status_code == 400 and response.json()["error"] == "invalid_signature"
    unsigned = requests.post(shop.url + "/webhooks/stripe", data=forged.payload, timeout=10,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert unsigned.status_code == 400
    assert shop.order(checkout["order_id"])["status"] == "pending"
    assert shop.db(lambda: db.session.scalar(select(func.count()).select_from(ProviderEvent))) == 0


@pytest.mark.parametrize("tamper", [{"amount_total": 100}, {"currency": "usd"}])
def test_a_payment_of_the_wrong_amount_or_currency_does_not_pay_the_order(shop, fake_stripe, tamper):
    session_id = shop.session(price=2500)
    _status, checkout = shop.checkout(session_id)
    response = shop.webhook(fake_stripe.complete_session(stripe_session_id(checkout), **tamper))
    assert response == "amount_mismatch"
    assert shop.order(checkout["order_id"])["status"] == "pending"


def test_unpaid_completion_waits_for_the_async_result(shop, fake_stripe):
    session_id = shop.session()
    _status, first = shop.checkout(session_id, "first@example.com")
    _status, second = shop.checkout(session_id, "second@example.com")
    for checkout in (first, second):
        response = shop.webhook(fake_stripe.complete_session(stripe_session_id(checkout), payment_status="unpaid"))
        assert response == "processing"
        assert shop.order(checkout["order_id"])["status"] == "pending"
    assert shop.webhook(fake_stripe.async_payment_succeeded(stripe_session_id(first))) == "paid"
    assert shop.webhook(fake_stripe.async_payment_failed(stripe_session_id(second))) == "failed"
    assert shop.order(first["order_id"])["status"] == "paid"
    assert shop.order(second["order_id"])["status"] == "failed"
    assert shop.seats_taken(session_id) == 1


def test_expired_checkout_gives_the_seat_back(shop, fake_stripe):
    session_id = shop.session(capacity=1)
    _status, checkout = shop.checkout(session_id)
    assert shop.checkout(session_id, "late@example.com")[0] == 409
    response = shop.webhook(fake_stripe.expire_session(stripe_session_id(checkout)))
    assert response == "expired"
    assert shop.order(checkout["order_id"])["status"] == "expired"
    assert shop.seats_taken(session_id) == 0
    assert shop.checkout(session_id, "late@example.com")[0] == 201


def test_late_payment_with_a_free_seat_is_confirmed(shop, fake_stripe):
    session_id = shop.session(capacity=2)
    _status, checkout = shop.checkout(session_id)
    shop.expire_hold_in_db(checkout["order_id"])
    shop.db(lambda: expire_holds(ask_provider=False))
    assert shop.order(checkout["order_id"])["status"] == "expired"
    assert shop.seats_taken(session_id) == 0

    response = shop.webhook(fake_stripe.complete_session(stripe_session_id(checkout)))
    assert response == "paid"
    assert shop.order(checkout["order_id"])["status"] == "paid"
    assert shop.seats_taken(session_id) == 1


def test_late_payment_without_a_seat_is_refunded_automatically(shop, fake_stripe):
    session_id = shop.session(capacity=1, price=3000)
    _status, late = shop.checkout(session_id, "late@example.com")
    shop.expire_hold_in_db(late["order_id"])
    status, prompt = shop.checkout(session_id, "prompt@example.com")  # the sold-out check frees the stale hold
    assert status == 201
    assert shop.order(late["order_id"])["status"] == "expired"
    shop.webhook(fake_stripe.complete_session(stripe_session_id(prompt)))

    event = fake_stripe.complete_session(stripe_session_id(late))
    response = shop.webhook(event)
    assert response == "refunded_no_seat"
    assert shop.order(late["order_id"])["status"] == "refunded"
    assert shop.order(prompt["order_id"])["status"] == "paid"
    assert shop.seats_taken(session_id) == 1
    payment_intent = fake_stripe.sessions[stripe_session_id(late)]["payment_intent"]
    refunds = [r for r in fake_stripe.refunds.values() if r["payment_intent"] == payment_intent]
    assert [(r["amount"], r["status"]) for r in refunds] == [(3000, "succeeded")]
    refund = shop.refund_of(late["order_id"])
    assert (refund["status"], refund["provider_refund_id"]) == ("succeeded", refunds[0]["id"])
    assert shop.webhook(event) == "duplicate"
    assert len([r for r in fake_stripe.refunds.values() if r["payment_intent"] == payment_intent]) == 1


def test_refund_that_fails_is_retried_by_the_tick(shop, fake_stripe):
    session_id = shop.session(capacity=1)
    _status, late = shop.checkout(session_id, "late@example.com")
    shop.expire_hold_in_db(late["order_id"])
    assert shop.checkout(session_id, "prompt@example.com")[0] == 201
    fake_stripe.fail_next.append((500, "api_error", "Stripe is having a bad day"))
    response = shop.webhook(fake_stripe.complete_session(stripe_session_id(late)))
    assert response == "refunded_no_seat"
    refund = shop.refund_of(late["order_id"])
    assert refund["status"] == "pending" and "bad day" in refund["last_error"]

    assert shop.db(lambda: process_refunds(now=utcnow() + timedelta(minutes=10))) == 1
    refund = shop.refund_of(late["order_id"])
    assert refund["status"] == "succeeded" and refund["attempts"] == 2


def test_reconcile_tick_asks_stripe_about_orders_left_pending(shop, fake_stripe):
    session_id = shop.session()
    _status, paid_quietly = shop.checkout(session_id, "quiet@example.com")
    _status, abandoned = shop.checkout(session_id, "gone@example.com")
    fake_stripe.complete_session(stripe_session_id(paid_quietly))  # Stripe never manages to deliver this one
    for checkout in (paid_quietly, abandoned):
        shop.expire_hold_in_db(checkout["order_id"])

    shop.db(lambda: expire_holds())
    assert shop.order(paid_quietly["order_id"])["status"] == "paid"
    assert shop.order(abandoned["order_id"])["status"] == "expired"
    assert fake_stripe.sessions[stripe_session_id(abandoned)]["status"] == "expired"
    assert shop.seats_taken(session_id) == 1


def test_sold_out_and_past_sessions_refuse_checkout(shop, client):
    session_id = shop.session(capacity=1)
    assert shop.checkout(session_id)[0] == 201
    status, body = shop.checkout(session_id, "second@example.com")
    assert status == 409 and body["error"] == "sold_out"
    assert "Sold out" in requests.get(f"{shop.url}/s/{session_id}", timeout=10).text
    shop.db(lambda: db.session.execute(
        update(LiveSession).where(LiveSession.id == session_id).values(starts_at=utcnow() - timedelta(minutes=5))
    ))  # fmt: skip
    status, body = shop.checkout(session_id, "third@example.com")
    assert status == 409 and body["error"] == "not_on_sale"
    assert "already taken place" in requests.get(f"{shop.url}/s/{session_id}", timeout=10).text


def test_free_sessions_skip_payment(shop, fake_stripe):
    session_id = shop.session(price=0)
    calls_before = len(fake_stripe.requests)
    status, body = shop.checkout(session_id)
    assert status == 201 and body["status"] == "paid"
    assert body["checkout_url"] == body["ticket_url"]
    assert len(fake_stripe.requests) == calls_before
    assert shop.order(body["order_id"])["provider"] == "free"


def test_checkout_input_errors(shop):
    session_id = shop.session()
    status, body = shop.buyer.post(f"/api/v1/sessions/{session_id}/checkout", {"name": "", "email": "nope"})
    assert status == 422 and set(body["fields"]) >= {"name", "email"}
    status, body = shop.buyer.post(f"/api/v1/sessions/{session_id}/checkout",
                                   {"name": "A", "email": "a@example.com", "provider": "bitcoin"})  # fmt: skip
    assert status == 422 and "provider" in body["fields"]
    assert shop.seats_taken(session_id) == 0
    assert shop.buyer.post("/api/v1/sessions/999999/checkout", {"name": "A", "email": "a@example.com"})[0] == 404
