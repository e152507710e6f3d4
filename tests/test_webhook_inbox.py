"""The webhook inbox: a payment webhook is acknowledged once it is stored, and applied by the worker, once."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import LiveShop, at_once
from tests.test_paypal_checkout import paypal_order_id
from webinar_pay.extensions import db
from webinar_pay.models import OrderLog, ProviderEvent, WebhookInbox, utcnow
from webinar_pay.scheduler import tick
from webinar_pay.services.inbox import apply_webhooks


@pytest.fixture
def shop(live_server, create_creator) -> LiveShop:
    return LiveShop(live_server(), create_creator()[1])


def _count(shop: LiveShop, model, *where) -> int:
    return shop.db(lambda: db.session.scalar(select(func.count()).select_from(model).where(*where)))


def _paid_transitions(shop: LiveShop) -> int:
    return _count(shop, OrderLog, OrderLog.to_status == "paid")


def test_a_webhook_is_acknowledged_at_once_and_applied_by_the_worker(shop, fake_stripe):
    session_id = shop.session()
    _status, checkout = shop.checkout(session_id)
    event = fake_stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1])

    first = event.post(shop.url + "/webhooks/stripe")
    assert first.status_code == 200 and first.json() == {"received": True, "outcome": "queued"}
    assert shop.order(checkout["order_id"])["status"] == "pending"  # nothing applied before the answer
    again = event.post(shop.url + "/webhooks/stripe")
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert _count(shop, WebhookInbox) == 1

    assert shop.db(tick)["apply_webhooks"] == 1  # the worker's tick
    order = shop.order(checkout["order_id"])
    assert order["status"] == "paid" and order["enrollment"]["status"] == "enrolled"
    assert _count(shop, WebhookInbox) == 0
    assert shop.db(lambda: db.session.scalar(select(ProviderEvent.outcome))) == "paid"

    assert shop.webhook(event) == "duplicate"  # Stripe delivering it once more, after it was applied
    assert _count(shop, WebhookInbox) == 0 and _count(shop, ProviderEvent) == 1 and _paid_transitions(shop) == 1


def test_a_refused_signature_is_not_kept(shop, fake_stripe):
    _status, checkout = shop.checkout(shop.session())
    forged = fake_stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1]).forged()
    assert forged.post(shop.url + "/webhooks/stripe").status_code == 400
    assert _count(shop, WebhookInbox) == 0


def test_an_event_that_cannot_be_applied_yet_waits_and_is_retried(live_server, create_creator, paypal_config,
                                                                  fake_paypal):  # fmt: skip
    shop = LiveShop(live_server(demo=True, **paypal_config), create_creator()[1], provider="paypal")
    _status, checkout = shop.checkout(shop.session(price=3000, currency="JPY"))
    _back, approved = fake_paypal.approve(paypal_order_id(checkout))
    assert approved.post(shop.url + "/webhooks/paypal").json()["outcome"] == "queued"

    fake_paypal.fail_next.append((503, "SERVICE_UNAVAILABLE", "Service Unavailable."))  # the capture call fails
    with shop.app.app_context():
        assert apply_webhooks() == {}
    attempts, error, due = shop.db(lambda: db.session.execute(
        select(WebhookInbox.attempts, WebhookInbox.last_error, WebhookInbox.next_attempt_at)
    ).one())  # fmt: skip
    assert attempts == 1 and "SERVICE_UNAVAILABLE" in error and due > utcnow()
    assert shop.order(checkout["order_id"])["status"] == "pending"
    with shop.app.app_context():
        assert apply_webhooks() == {}  # not due yet

    listing = shop.app.test_cli_runner().invoke(args=["webhooks"])
    assert listing.exit_code == 1, listing.output
    assert "failed 1x" in listing.output and "SERVICE_UNAVAILABLE" in listing.output
    assert "1 webhooks waiting, 1 of them failed" in listing.output

    retried = shop.app.test_cli_runner().invoke(args=["webhooks", "--retry-now"])  # PayPal is back
    assert "1 failed webhooks due again now" in retried.output
    with shop.app.app_context():
        assert list(apply_webhooks().values()) == ["paid"]
    assert shop.order(checkout["order_id"])["status"] == "paid"
    assert _count(shop, WebhookInbox) == 0
    quiet = shop.app.test_cli_runner().invoke(args=["webhooks"])
    assert quiet.exit_code == 0 and "0 webhooks waiting, 0 of them failed" in quiet.output


def test_two_workers_apply_each_payment_once(live_server, create_creator, fake_stripe):
    shop = LiveShop(live_server(HOLDS_PER_CLIENT=0), create_creator()[1])  # thirty buyers, all on this machine
    session_id = shop.session(capacity=30)
    for index in range(30):
        _status, checkout = shop.checkout(session_id, email=f"buyer{index}@example.com")
        event = fake_stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1])
        assert event.post(shop.url + "/webhooks/stripe").json()["outcome"] == "queued"

    results = at_once(shop.app, apply_webhooks)
    applied = [event_id for result in results for event_id in result]
    assert len(applied) == len(set(applied)) == 30
    assert all(outcome == "paid" for result in results for outcome in result.values())
    assert _paid_transitions(shop) == 30 and _count(shop, WebhookInbox) == 0 and _count(shop, ProviderEvent) == 30
