"""The webhook inbox: a payment webhook is acknowledged once it is stored, and applied by the worker, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import LiveShop, at_once, paypal_order_id
from tests.test_paypal_checkout import capture_calls
from webinar_pay.extensions import db
from webinar_pay.models import OrderLog, ProviderEvent, WebhookInbox, utcnow
from webinar_pay.scheduler import tick
from webinar_pay.services.inbox import apply_webhooks


@pytest.fixture
def shop(live_server, create_creator) -> LiveShop:
    return LiveShop(live_server(), create_creator()[1])


def _paid_transitions(shop: LiveShop) -> int:
    return shop.count(OrderLog, OrderLog.to_status == "paid")


def test_a_webhook_is_acknowledged_at_once_and_applied_by_the_worker(shop, fake_stripe):
    session_id = shop.session()
    _status, checkout = shop.checkout(session_id)
    event = fake_stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1])

    first = event.post(shop.url + "/webhooks/stripe")
    assert first.status_code == 200 and first.json() == {"received": True, "outcome": "queued"}
    assert shop.order(checkout["order_id"])["status"] == "pending"  # nothing applied before the answer
    again = event.post(shop.url + "/webhooks/stripe")
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert shop.count(WebhookInbox) == 1

    assert shop.db(tick)["apply_webhooks"] == 1  # the worker's tick
    order = shop.order(checkout["order_id"])
    assert order["status"] == "paid" and order["enrollment"]["status"] == "enrolled"
    assert shop.count(WebhookInbox) == 0
    assert shop.db(lambda: db.session.scalar(select(ProviderEvent.outcome))) == "paid"

    assert shop.webhook(event) == "duplicate"  # Stripe delivering it once more, after it was applied
    assert shop.count(WebhookInbox) == 0 and shop.count(ProviderEvent) == 1 and _paid_transitions(shop) == 1


def test_a_refused_signature_is_not_kept(shop, fake_stripe):
    _status, checkout = shop.checkout(shop.session())
    forged = fake_stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1]).forged()
    assert forged.post(shop.url + "/webhooks/stripe").status_code == 400
    assert shop.count(WebhookInbox) == 0


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
    assert "1 webhook waiting, 1 of them failed" in listing.output

    retried = shop.app.test_cli_runner().invoke(args=["webhooks", "--retry-now"])  # PayPal is back
    assert "1 failed webhook due again now" in retried.output
    with shop.app.app_context():
        assert list(apply_webhooks().values()) == ["paid"]
    assert shop.order(checkout["order_id"])["status"] == "paid"
    assert shop.count(WebhookInbox) == 0
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
    assert _paid_transitions(shop) == 30 and shop.count(WebhookInbox) == 0 and shop.count(ProviderEvent) == 30


# -- the lease: a dead worker's rows come back, a live worker's rows stay its own -----------------------------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def paypal_shop(live_server, create_creator, paypal_config, fake_paypal):
    def start(**overrides) -> LiveShop:
        return LiveShop(live_server(demo=True, **paypal_config, **overrides), create_creator()[1], provider="paypal")

    return start


def _approved_payments(shop: LiveShop, fake_paypal, count: int) -> list[tuple[int, str]]:
    """`count` buyers approve on PayPal and close the tab: only the webhooks are left to capture. (order, PayPal id)"""
    session_id = shop.session(price=3000, currency="JPY", capacity=count)
    payments = []
    for index in range(count):
        _status, checkout = shop.checkout(session_id, email=f"buyer{index}@example.com")
        _back, approved = fake_paypal.approve(paypal_order_id(checkout))
        assert approved.post(shop.url + "/webhooks/paypal").json()["outcome"] == "queued"
        payments.append((checkout["order_id"], paypal_order_id(checkout)))
    return payments


def _worker_process(shop: LiveShop, paypal_config: dict, **settings) -> subprocess.Popen:
    """`flask --app app worker`, as production runs it, on the test database."""
    config = shop.app.config
    env = {
        **os.environ,
        "WEBINAR_PAY_ENV": "test",
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "BASE_URL": config["BASE_URL"],
        **{key: str(value) for key, value in paypal_config.items()},
        **{key: str(value) for key, value in settings.items()},
    }
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _until(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_the_webhooks_of_a_killed_worker_are_applied_once_its_lease_ends(paypal_shop, paypal_config, fake_paypal):
    lease = 4
    shop = paypal_shop(WEBHOOK_LEASE_SECONDS=lease)
    payments = _approved_payments(shop, fake_paypal, 2)
    fake_paypal.hang(120)  # the worker's first capture (its token, first) gets no answer...
    calls = len(fake_paypal.arrivals)
    worker = _worker_process(shop, paypal_config, WEBHOOK_LEASE_SECONDS=lease, PROVIDER_READ_TIMEOUT_SECONDS=120)
    try:
        _until(lambda: len(fake_paypal.arrivals) > calls, "the worker to call PayPal")
    finally:
        worker.send_signal(signal.SIGKILL)  # ...and the worker dies mid-batch, holding both rows
        worker.wait(timeout=30)
    fake_paypal.hang(0)

    with shop.app.app_context():
        assert apply_webhooks() == {}  # still leased to the dead worker: nobody else takes them yet
    assert shop.count(WebhookInbox) == 2
    assert [shop.order(order_id)["status"] for order_id, _paypal_id in payments] == ["pending", "pending"]

    applied: dict[str, str] = {}

    def another_worker_applies() -> bool:
        with shop.app.app_context():
            applied.update(apply_webhooks())
        return len(applied) == 2

    _until(another_worker_applies, "the lease to end", seconds=lease + 30)
    assert sorted(applied.values()) == ["paid", "paid"]
    assert [shop.order(order_id)["status"] for order_id, _paypal_id in payments] == ["paid", "paid"]
    assert [capture_calls(fake_paypal, paypal_id) for _order_id, paypal_id in payments] == [1, 1]
    assert shop.count(WebhookInbox) == 0 and _paid_transitions(shop) == 2


def test_a_worker_slower_than_the_lease_keeps_its_batch(paypal_shop, fake_paypal):
    lease = 2
    shop = paypal_shop(WEBHOOK_LEASE_SECONDS=lease, HOLDS_PER_CLIENT=0)  # six buyers, all from this machine
    payments = _approved_payments(shop, fake_paypal, 6)
    fake_paypal.latency = 0.5  # each capture takes half a second: the six of them outlast the lease
    captures = len([call for call in fake_paypal.arrivals if call.endswith("/capture")])
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    done = threading.Event()

    def first_worker() -> None:
        with shop.app.app_context():
            first.update(apply_webhooks())
            db.session.remove()
        done.set()

    def second_worker() -> None:  # polls the inbox as a second `flask worker` does, while the first one works
        with shop.app.app_context():
            while not done.is_set():
                second.update(apply_webhooks())
                db.session.remove()
                time.sleep(0.1)

    started = time.monotonic()
    threading.Thread(target=first_worker, daemon=True).start()
    _until(lambda: len([c for c in fake_paypal.arrivals if c.endswith("/capture")]) > captures, "the first capture")
    polling = threading.Thread(target=second_worker, daemon=True)
    polling.start()
    done.wait(timeout=120)
    polling.join(timeout=30)
    assert time.monotonic() - started > lease, "the batch must outlast the lease for this test to mean anything"

    assert len(first) == 6 and set(first.values()) == {"paid"} and second == {}
    assert [capture_calls(fake_paypal, paypal_id) for _order_id, paypal_id in payments] == [1] * 6
    assert _paid_transitions(shop) == 6 and shop.count(ProviderEvent) == 6 and shop.count(WebhookInbox) == 0
