"""The dashboard's list: sessions coming up soonest first, past ones after, each with what it brought in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.test_refunds import Shop
from webinar_pay.extensions import db
from webinar_pay.models import LiveSession, utcnow


@pytest.fixture
def shop(live_server, create_creator, fake_stripe) -> Shop:
    return Shop(live_server(), create_creator()[1], "stripe", stripe=fake_stripe)


def _rows(page: str, table: str) -> list[tuple[str, str]]:
    body = page.split(f'id="{table}"')[1].split("</table>")[0]
    titles = re.findall(r'<a href="/dashboard/sessions/\d+">([^<]+)</a>', body)
    takings = re.findall(r'<td class="takings">([^<]+)</td>', body)
    return list(zip(titles, takings, strict=True))


def test_the_dashboard_lists_the_soonest_first_with_the_takings(shop):
    later = shop.session(title="Later", price=3000, starts_at=(utcnow() + timedelta(days=20)).isoformat())
    sooner = shop.session(title="Sooner", price=2000, starts_at=(utcnow() + timedelta(days=2)).isoformat())
    shop.session(title="Free one", price=0)
    done = shop.session(title="Done", price=1000)
    for email in ("a@example.com", "b@example.com"):
        shop.paid_order(sooner, email)
    refunded = shop.paid_order(later)["order_id"]
    partly = shop.paid_order(later, "c@example.com")["order_id"]
    shop.paid_order(done)
    assert shop.refund(refunded)[0] == 201  # all of it: nothing kept
    assert shop.refund(partly, {"amount": 500})[0] == 201  # part of it: the rest kept
    shop.db(lambda: db.session.execute(
        update(LiveSession).where(LiveSession.id == done).values(starts_at=utcnow() - timedelta(days=1))
    ))  # fmt: skip

    page = shop.dashboard().get(f"{shop.url}/dashboard/", timeout=10).text
    assert _rows(page, "upcoming-sessions") == [("Sooner", "€40.00"), ("Free one", "—"), ("Later", "€25.00")]
    assert _rows(page, "past-sessions") == [("Done", "€10.00")]
