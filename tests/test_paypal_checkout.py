"""PayPal checkout end to end over HTTP: our app, our PayPal client and a fake PayPal on 127.0.0.1."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from tests.conftest import LiveShop, paypal_order_id
from webinar_pay.extensions import db
from webinar_pay.models import OrderLog, ProviderEvent, Refund
from webinar_pay.services.orders import expire_holds
from webinar_pay.services.payments import provider as get_provider


@pytest.fixture
def shop(live_server, create_creator, paypal_config, fake_paypal):
    """A running app whose only payment method is PayPal (through the fake), with helpers to drive it over HTTP."""
    server = live_server(demo=True, **paypal_config)
    return Shop(server, create_creator()[1])


class Shop(LiveShop):
    def __init__(self, server, token: str):
        super().__init__(server, token, provider="paypal")


def capture_calls(fake_paypal, paypal_id: str) -> int:
    return len([r for r in fake_paypal.requests if r.path == f"/v2/checkout/orders/{paypal_id}/capture"])


def test_approve_and_return_makes_the_order_paid(shop, fake_paypal):
    session_id = shop.session(price=4900, currency="EUR")
    status, checkout = shop.checkout(session_id)
    assert status == 201 and checkout["status"] == "pending"
    assert checkout["checkout_url"].startswith(fake_paypal.base_url + "/checkoutnow?token=")
    assert shop.seats_taken(session_id) == 1

    order_id = checkout["order_id"]
    paypal_id = paypal_order_id(checkout)
    created = fake_paypal.orders[paypal_id]
    unit = created["purchase_units"][0]
    assert created["intent"] == "CAPTURE"
    assert unit["amount"] == {"currency_code": "EUR", "value": "49.00"}
    assert unit["custom_id"] == str(order_id)
    assert re.fullmatch(rf"{order_id}-[0-9a-f]{{12}}", unit["invoice_id"])
    assert created["_experience"]["return_url"] == checkout["ticket_url"] + "?from=checkout"
    assert created["_experience"]["cancel_url"] == checkout["ticket_url"] + "/cancelled"
    assert any(key.startswith(f"checkout-order-{order_id}-") for key in fake_paypal.request_ids)
    assert "Fake PayPal checkout" in requests.get(checkout["checkout_url"], timeout=10).text
    offered = requests.get(f"{shop.url}/s/{session_id}", timeout=10).text
    assert 'value="paypal"' in offered and "test mode" not in offered.lower()  # PayPal alone ends demo mode

    waiting = requests.get(checkout["ticket_url"], timeout=10)
    assert "pending" in waiting.text
    back, _approved = fake_paypal.approve(paypal_id)
    page = requests.get(back, timeout=10)
    assert page.url == checkout["ticket_url"] + "?from=checkout"  # PayPal's parameters are gone
    assert "You're in" in page.text and "€49.00" in page.text
    capture = fake_paypal.capture_of(paypal_id)
    assert capture["status"] == "COMPLETED" and capture["custom_id"] == str(order_id)
    order = shop.order(order_id)
    assert order["status"] == "paid" and order["provider"] == "paypal"
    assert order["enrollment"] == {"status": "enrolled", "join_url": "https://meet.example.com/watercolour"}

    # PayPal's own events arrive afterwards; a reloaded return page captures nothing twice.
    assert shop.webhook(fake_paypal.capture_webhook(capture["id"])) == "already_paid"
    assert "You're in" in requests.get(back, timeout=10).text
    assert capture_calls(fake_paypal, paypal_id) == 1
    assert shop.count(OrderLog, OrderLog.order_id == order_id, OrderLog.to_status == "paid") == 1
    assert shop.seats_taken(session_id) == 1


def test_buyer_who_closes_the_tab_is_paid_by_the_webhook_alone(shop, fake_paypal):
    session_id = shop.session(price=3000, currency="JPY")
    _status, checkout = shop.checkout(session_id)
    paypal_id = paypal_order_id(checkout)
    assert fake_paypal.orders[paypal_id]["purchase_units"][0]["amount"] == {"currency_code": "JPY", "value": "3000"}

    _back, approved = fake_paypal.approve(paypal_id)  # the buyer never comes back
    response = shop.webhook(approved)
    assert response == "paid"
    assert fake_paypal.orders[paypal_id]["status"] == "COMPLETED"
    order = shop.order(checkout["order_id"])
    assert order["status"] == "paid" and order["amount"] == 3000 and order["currency"] == "JPY"
    assert "¥3,000" in requests.get(checkout["ticket_url"], timeout=10).text

    assert shop.webhook(approved) == "duplicate"
    capture = fake_paypal.capture_of(paypal_id)
    assert shop.webhook(fake_paypal.capture_webhook(capture["id"])) == "already_paid"
    assert capture_calls(fake_paypal, paypal_id) == 1


def test_return_after_another_process_captured_is_one_payment(shop, fake_paypal):
    session_id = shop.session()
    _status, checkout = shop.checkout(session_id)
    paypal_id = paypal_order_id(checkout)
    back, _approved = fake_paypal.approve(paypal_id)
    # A webhook handler captured, then died before recording it: the return meets ORDER_ALREADY_CAPTURED.
    with shop.app.app_context():
        get_provider("paypal").capture(paypal_id)
    assert "You're in" in requests.get(back, timeout=10).text
    assert (
        capture_calls(fake_paypal, paypal_id) == 2
        and len(fake_paypal.orders[paypal_id]["purchase_units"][0]["payments"]["captures"]) == 1
    )
    order = shop.order(checkout["order_id"])
    assert order["status"] == "paid" and shop.seats_taken(session_id) == 1


def test_forged_tampered_and_duplicate_webhooks(shop, fake_paypal):
    session_id = shop.session()
    _status, checkout = shop.checkout(session_id)
    _back, approved = fake_paypal.approve(paypal_order_id(checkout))

    forged = fake_paypal.forged(approved).post(shop.url + "/webhooks/paypal")
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_signature"
    tampered_body = approved.body.replace(b'"CHECKOUT.ORDER.APPROVED"', b'"PAYMENT.CAPTURE.COMPLETED"')
    tampered = requests.post(shop.url + "/webhooks/paypal", data=tampered_body, headers=approved.headers, timeout=10)
    assert tampered.status_code == 400
    foreign_cert = fake_paypal.sign(approved.body, cert_url="https://certs.example.net/v1/notifications/certs/CERT-1")
    refused = foreign_cert.post(shop.url + "/webhooks/paypal")
    assert refused.status_code == 400 and "not trusted" in refused.json()["message"]
    unsigned = requests.post(shop.url + "/webhooks/paypal", data=approved.body, timeout=10,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert unsigned.status_code == 400 and "PAYPAL-TRANSMISSION-ID" in unsigned.json()["message"]
    garbage = requests.post(shop.url + "/webhooks/paypal", data=b"not json", headers=approved.headers, timeout=10)
    assert garbage.status_code == 400
    assert shop.order(checkout["order_id"])["status"] == "pending"
    assert shop.count(ProviderEvent) == 0
    assert capture_calls(fake_paypal, paypal_order_id(checkout)) == 0

    assert shop.webhook(approved) == "paid"
    again = shop.webhook(approved)
    assert again == "duplicate"
    assert shop.count(ProviderEvent, ProviderEvent.event_id == approved.id) == 1


def test_a_capture_of_the_wrong_amount_does_not_pay_the_order(shop, fake_paypal):
    session_id = shop.session(price=2500, currency="EUR")
    _status, checkout = shop.checkout(session_id)
    paypal_id = paypal_order_id(checkout)
    fake_paypal.next_capture_status = "PENDING"
    back, _approved = fake_paypal.approve(paypal_id)
    requests.get(back, timeout=10)
    capture = fake_paypal.capture_of(paypal_id)
    resource = fake_paypal.capture_webhook(capture["id"]).json()["resource"]
    resource.update(status="COMPLETED", amount={"currency_code": "EUR", "value": "1.00"})
    response = shop.webhook(fake_paypal.webhook("PAYMENT.CAPTURE.COMPLETED", "capture", resource))
    assert response == "amount_mismatch"
    assert shop.order(checkout["order_id"])["status"] == "pending"


def test_a_refused_capture_keeps_the_seat_for_another_try(shop, fake_paypal):
    session_id = shop.session(capacity=1)
    _status, checkout = shop.checkout(session_id)
    paypal_id = paypal_order_id(checkout)
    back, _approved = fake_paypal.approve(paypal_id)
    fake_paypal.fail_next.append((422, "UNPROCESSABLE_ENTITY", "The instrument was declined.", "INSTRUMENT_DECLINED"))
    page = requests.get(back, timeout=10)
    assert "Your seat is held while you pay" in page.text and "waiting for the payment provider" not in page.text
    assert shop.order(checkout["order_id"])["status"] == "pending" and shop.seats_taken(session_id) == 1
    back, _approved = fake_paypal.approve(paypal_id)  # the buyer picks another funding source on PayPal
    assert "You're in" in requests.get(back, timeout=10).text


def test_pending_capture_waits_and_a_denied_capture_releases_the_seat(shop, fake_paypal):
    session_id = shop.session(capacity=1)
    _status, checkout = shop.checkout(session_id)
    paypal_id = paypal_order_id(checkout)
    fake_paypal.next_capture_status = "PENDING"
    back, _approved = fake_paypal.approve(paypal_id)
    page = requests.get(back, timeout=10)
    assert "waiting for the payment provider" in page.text
    capture = fake_paypal.capture_of(paypal_id)
    assert shop.webhook(fake_paypal.capture_webhook(capture["id"])) == "processing"
    assert shop.order(checkout["order_id"])["status"] == "pending"
    assert shop.checkout(session_id, "second@example.com")[0] == 409

    denied = shop.webhook(fake_paypal.settle_capture(capture["id"], "DECLINED"))
    assert denied == "failed"
    assert shop.order(checkout["order_id"])["status"] == "failed"
    assert shop.seats_taken(session_id) == 0
    assert "No payment was taken" in requests.get(checkout["ticket_url"], timeout=10).text
    assert shop.checkout(session_id, "second@example.com")[0] == 201


def test_declined_at_capture_fails_at_once(shop, fake_paypal):
    session_id = shop.session(capacity=1)
    _status, checkout = shop.checkout(session_id)
    fake_paypal.next_capture_status = "DECLINED"
    back, _approved = fake_paypal.approve(paypal_order_id(checkout))
    assert "No payment was taken" in requests.get(back, timeout=10).text
    assert shop.order(checkout["order_id"])["status"] == "failed"
    assert shop.seats_taken(session_id) == 0


def test_an_expired_order_is_never_captured(shop, fake_paypal):
    session_id = shop.session()
    _status, checkout = shop.checkout(session_id)
    paypal_id = paypal_order_id(checkout)
    back, approved = fake_paypal.approve(paypal_id)
    shop.expire_hold_in_db(checkout["order_id"])
    assert shop.db(lambda: expire_holds()) == 1  # asks PayPal: approved but not captured, so no money moved
    assert shop.order(checkout["order_id"])["status"] == "expired"
    assert "No payment was taken" in requests.get(back, timeout=10).text
    assert shop.webhook(approved) == "open"
    assert capture_calls(fake_paypal, paypal_id) == 0
    assert fake_paypal.orders[paypal_id]["status"] == "APPROVED"


def test_late_pending_capture_without_a_seat_is_refunded_through_paypal(shop, fake_paypal):
    session_id = shop.session(capacity=1, price=3000, currency="EUR")
    _status, late = shop.checkout(session_id, "late@example.com")
    late_paypal = paypal_order_id(late)
    fake_paypal.next_capture_status = "PENDING"
    requests.get(fake_paypal.approve(late_paypal)[0], timeout=10)
    fake_paypal.next_capture_status = "COMPLETED"
    shop.expire_hold_in_db(late["order_id"])
    shop.db(lambda: expire_holds())  # PayPal says the capture is still pending: the hold ends
    assert shop.order(late["order_id"])["status"] == "expired"

    _status, prompt = shop.checkout(session_id, "prompt@example.com")
    requests.get(fake_paypal.approve(paypal_order_id(prompt))[0], timeout=10)
    assert shop.order(prompt["order_id"])["status"] == "paid"

    capture = fake_paypal.capture_of(late_paypal)
    response = shop.webhook(fake_paypal.settle_capture(capture["id"], "COMPLETED"))
    assert response == "refunded_no_seat"
    assert shop.order(late["order_id"])["status"] == "refunded"
    refunds = [r for r in fake_paypal.refunds.values() if r["_capture_id"] == capture["id"]]
    assert [(r["amount"], r["status"]) for r in refunds] == [({"currency_code": "EUR", "value": "30.00"}, "COMPLETED")]
    assert fake_paypal.captures[capture["id"]]["status"] == "REFUNDED"
    refund = shop.db(lambda: db.session.execute(
        select(Refund.status, Refund.provider_refund_id).where(Refund.order_id == late["order_id"])
    ).one())  # fmt: skip
    assert tuple(refund) == ("succeeded", refunds[0]["id"])
    assert any(key.startswith(f"refund-{late['order_id']}-") for key in fake_paypal.request_ids)
    # PayPal then reports the refund we made: recorded, nothing changes.
    notice = shop.webhook(fake_paypal.refund_webhook(refunds[0]["id"]))
    assert notice == "own_refund"
    assert shop.seats_taken(session_id) == 1


@pytest.mark.parametrize("event_type", ["PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"])
def test_money_given_back_at_paypal_refunds_the_order(shop, fake_paypal, event_type):
    session_id = shop.session(capacity=1)
    _status, checkout = shop.checkout(session_id)
    paypal_id = paypal_order_id(checkout)
    requests.get(fake_paypal.approve(paypal_id)[0], timeout=10)
    assert shop.order(checkout["order_id"])["status"] == "paid"

    notice = fake_paypal.refund_from_dashboard(fake_paypal.capture_of(paypal_id)["id"], event_type)
    response = shop.webhook(notice)
    assert response == "refunded"
    assert shop.order(checkout["order_id"])["status"] == "refunded"
    assert shop.seats_taken(session_id) == 0
    assert "This order was refunded" in requests.get(checkout["ticket_url"], timeout=10).text
    join = requests.get(shop.join_url(checkout["order_id"]), allow_redirects=False, timeout=10)
    assert join.status_code == 403
    assert shop.webhook(notice) == "duplicate"
    events = shop.db(lambda: [(e.event_type, e.order_id) for e in db.session.scalars(select(ProviderEvent))])
    assert (event_type, checkout["order_id"]) in events


def test_a_partial_refund_at_paypal_is_recorded_only(shop, fake_paypal):
    session_id = shop.session(price=4000)
    _status, checkout = shop.checkout(session_id)
    paypal_id = paypal_order_id(checkout)
    requests.get(fake_paypal.approve(paypal_id)[0], timeout=10)
    capture = fake_paypal.capture_of(paypal_id)
    refund = fake_paypal._new_refund(fake_paypal.captures[capture["id"]], {"currency_code": "EUR", "value": "10.00"})
    assert shop.webhook(fake_paypal.refund_webhook(refund["id"])) == "partial_refund_recorded"
    assert shop.order(checkout["order_id"])["status"] == "paid"


def test_checkout_page_offers_paypal_next_to_card(live_server, create_creator, paypal_config, fake_paypal):
    server = live_server(**paypal_config)  # Stripe and PayPal both configured
    shop = Shop(server, create_creator()[1])
    session_id = shop.session()
    browser = requests.Session()
    page = browser.get(f"{shop.url}/s/{session_id}", timeout=10).text
    assert 'value="stripe"' in page and 'value="paypal"' in page and "PayPal" in page
    assert "test mode" not in page.lower()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": csrf, "name": "Bo Buyer", "email": "bo@example.com", "provider": "paypal"}
    response = browser.post(f"{shop.url}/s/{session_id}/checkout", data=form, allow_redirects=False, timeout=10)
    assert response.status_code == 303
    assert response.headers["Location"].startswith(fake_paypal.base_url + "/checkoutnow?token=")
    cancelled = browser.get(fake_paypal.cancel_url(parse_qs(urlsplit(response.headers["Location"]).query)["token"][0]))
    assert cancelled.status_code == 200 and "Watercolour basics" in cancelled.text


def test_webhook_without_paypal_configured_is_404(live_server):
    server = live_server()
    response = requests.post(server.url + "/webhooks/paypal", data=json.dumps({}), timeout=10)
    assert response.status_code == 404 and response.json()["error"] == "not_configured"


def test_a_refund_notice_without_custom_id_is_found_by_its_capture(shop, fake_paypal):
    session_id = shop.session()
    _status, checkout = shop.checkout(session_id)
    paypal_id = paypal_order_id(checkout)
    requests.get(fake_paypal.approve(paypal_id)[0], timeout=10)
    resource = fake_paypal.refund_from_dashboard(fake_paypal.capture_of(paypal_id)["id"]).json()["resource"]
    del resource["custom_id"]
    response = shop.webhook(fake_paypal.webhook("PAYMENT.CAPTURE.REFUNDED", "refund", resource))
    assert response == "refunded"
    assert shop.order(checkout["order_id"])["status"] == "refunded"
