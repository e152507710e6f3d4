"""The worker's shared job helpers: the retry waits every job uses, and the refunds' waits as a creator meets them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import LiveShop
from webinar_pay.extensions import db
from webinar_pay.models import Refund
from webinar_pay.services.jobs import backoff
from webinar_pay.services.refunds import process_refunds


@pytest.fixture
def stripe(fake_stripe):
    """The session's fake Stripe, its queued failures cleared after the test whatever happened."""
    yield fake_stripe
    fake_stripe.fail_next.clear()


def test_retry_waits_double_from_the_base_up_to_the_cap():
    waits = [backoff(attempt, 60, 3600) for attempt in range(1, 9)]
    assert waits == [timedelta(seconds=s) for s in (60, 120, 240, 480, 960, 1920, 3600, 3600)]


def test_a_row_retried_for_days_still_waits_the_cap():
    """The webhook inbox never gives up: thousands of attempts later the wait is still the cap, not an overflow."""
    assert backoff(10_000, 30, 3600) == timedelta(hours=1)
    assert backoff(10_000, 30.5, 3600) == timedelta(hours=1)


def test_a_refund_the_provider_keeps_refusing_is_retried_at_most_an_hour_apart(live_server, create_creator, stripe):
    shop = LiveShop(live_server(), create_creator()[1])
    status, checkout = shop.checkout(shop.session(price=2500))
    assert status == 201, checkout
    assert shop.webhook(stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1])) == "paid"
    stripe.fail_next.extend([(503, "api_error", "Stripe is unavailable")] * 8)  # every attempt a refund gets
    status, body = shop.creator.post(f"/api/v1/orders/{checkout['order_id']}/refund")
    assert status == 201 and body["refund"]["status"] == "pending", body

    def refund() -> tuple[str, datetime]:
        row = db.session.execute(select(Refund.status, Refund.next_attempt_at).where(Refund.order_id == order_id))
        return tuple(row.one())

    order_id = checkout["order_id"]
    waits = []
    while (state := shop.db(refund))[0] == "pending":
        now = state[1]
        assert shop.db(lambda now=now: process_refunds(now=now)) == 0
        if (after := shop.db(refund))[0] == "pending":
            waits.append(after[1] - now)
    assert stripe.fail_next == []
    assert waits == [timedelta(minutes=m) for m in (4, 8, 16, 32, 60, 60)]
    assert shop.db(refund)[0] == "failed" and shop.order(order_id)["status"] == "paid"
