"""Seat hoarding: a buyer (email) or a client address holds a bounded number of unpaid seats per session, on SQLite
and on PostgreSQL, under concurrency too; a buyer who gives up on the provider's page gets the seat released at once.

Over HTTP against the app, the real `stripe` library, our PayPal client and the fakes on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import requests
from sqlalchemy import select

from tests.conftest import Api, LiveShop, all_at_once, paypal_order_id, session_payload, stripe_session_id
from webinar_pay.extensions import db
from webinar_pay.models import Order
from webinar_pay.services.orders import expire_holds


class Shop(LiveShop):
    def client_hash(self, order_id: int) -> str | None:
        return self.db(lambda: db.session.scalar(select(Order.client_hash).where(Order.id == order_id)))


@pytest.fixture
def shop(live_server, create_creator, paypal_config) -> Shop:
    return Shop(live_server(**paypal_config), create_creator()[1])


# -- the limits ---------------------------------------------------------------------------------------------------


def test_one_buyer_holds_at_most_two_unpaid_seats_per_session(shop):
    session_id = shop.session(capacity=5)
    assert [shop.checkout(session_id)[0] for _ in range(2)] == [201, 201]

    status, body = shop.checkout(session_id, email="BO@Example.com")  # the same buyer, however spelt
    assert status == 429 and body["error"] == "too_many_holds"
    assert "You already hold 2 unpaid seats for this session" in body["message"]
    assert re.search(r"try again in (3[0-3]) minutes", body["message"]), body["message"]
    assert shop.seats_taken(session_id) == 2  # the refused checkout took nothing

    assert shop.checkout(session_id, email="ann@example.com")[0] == 201  # another buyer on the same machine
    assert shop.checkout(shop.session(), email="bo@example.com")[0] == 201  # the limit is per session


def test_one_client_address_holds_at_most_five_unpaid_seats_per_session(make_app, stripe_config, create_creator):
    app = make_app(TRUSTED_PROXIES=1, **stripe_config)  # behind one proxy: the address it saw is the client's
    creator = Api(app.test_client(), create_creator()[1])
    session_id = creator.post("/api/v1/sessions", session_payload(capacity=10))[1]["id"]
    assert creator.post(f"/api/v1/sessions/{session_id}/publish")[0] == 200
    client = app.test_client()

    def checkout(n: int, address: str):
        buyer = {"name": f"Buyer {n}", "email": f"buyer{n}@example.com", "provider": "stripe"}
        response = client.post(
            f"/api/v1/sessions/{session_id}/checkout", json=buyer, headers={"X-Forwarded-For": address}
        )
        return response.status_code, response.get_json()

    assert [checkout(n, "203.0.113.7")[0] for n in range(5)] == [201] * 5
    status, body = checkout(5, "203.0.113.7")
    assert (status, body["error"]) == (429, "too_many_holds")
    assert "5 unpaid seats for this session are already held from your network" in body["message"]
    assert checkout(6, "198.51.100.9")[0] == 201  # someone else
    assert creator.get(f"/api/v1/sessions/{session_id}")[1]["seats_taken"] == 6


def test_the_checkout_form_answers_429_on_the_session_page(shop):
    session_id = shop.session(capacity=5)
    browser = requests.Session()

    def buy() -> requests.Response:
        page = browser.get(f"{shop.url}/s/{session_id}", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
        form = {"csrf_token": csrf, "name": "Bo Buyer", "email": "bo@example.com", "provider": "stripe"}
        return browser.post(f"{shop.url}/s/{session_id}/checkout", data=form, allow_redirects=False, timeout=10)

    assert [buy().status_code for _ in range(2)] == [303, 303]
    refused = buy()
    assert refused.status_code == 429 and refused.headers["Content-Type"].startswith("text/html")
    assert "You already hold 2 unpaid seats for this session" in refused.text
    assert 'value="bo@example.com"' in refused.text  # the form keeps what the buyer typed
    assert shop.seats_taken(session_id) == 2


def test_holds_that_ended_no_longer_count(shop, fake_stripe):
    session_id = shop.session(capacity=10)
    first, second = (shop.checkout(session_id)[1] for _ in range(2))
    assert shop.checkout(session_id)[0] == 429

    assert shop.webhook(fake_stripe.complete_session(stripe_session_id(first))) == "paid"
    third = shop.checkout(session_id)
    assert third[0] == 201  # a paid seat is no longer a hold

    assert requests.get(second["ticket_url"] + "/cancelled", timeout=10).ok  # gave up on Stripe's page
    fourth = shop.checkout(session_id)
    assert fourth[0] == 201

    shop.expire_hold_in_db(third[1]["order_id"])  # its time ran out: it counts no more, even before the tick
    assert shop.checkout(session_id)[0] == 201
    assert shop.checkout(session_id)[0] == 429


def test_checkouts_at_the_same_moment_cannot_pass_the_limit_together(shop):
    session_id = shop.session(capacity=20)
    one_buyer = all_at_once(*[lambda: shop.checkout(session_id)[0]] * 6)
    assert sorted(one_buyer) == [201, 201, 429, 429, 429, 429], one_buyer

    many_buyers = all_at_once(*[lambda n=n: shop.checkout(session_id, email=f"b{n}@example.com")[0] for n in range(8)])
    assert sorted(many_buyers) == [201] * 3 + [429] * 5, many_buyers  # five per address, two of them Bo's
    assert shop.seats_taken(session_id) == 5


def test_the_address_is_kept_only_as_a_keyed_hash_while_the_seat_is_held(shop, fake_stripe):
    session_id = shop.session(capacity=10)
    paid, expiring = (shop.checkout(session_id, email=f"{n}@example.com")[1] for n in ("paid", "expiring"))
    stored = shop.client_hash(paid["order_id"])
    assert stored and len(stored) == 32 and "127.0.0.1" not in stored
    assert stored != hashlib.sha256(b"127.0.0.1").hexdigest()[:32]  # keyed: no table of addresses reverses it
    assert stored == shop.client_hash(expiring["order_id"])

    assert shop.webhook(fake_stripe.complete_session(stripe_session_id(paid))) == "paid"
    shop.expire_hold_in_db(expiring["order_id"])
    assert shop.db(lambda: expire_holds(ask_provider=False)) == 1
    assert shop.client_hash(paid["order_id"]) is None and shop.client_hash(expiring["order_id"]) is None


def test_a_zero_limit_turns_the_limit_off(live_server, create_creator):
    shop = Shop(live_server(HOLDS_PER_BUYER=0, HOLDS_PER_CLIENT=0), create_creator()[1])
    session_id = shop.session(capacity=7)
    assert [shop.checkout(session_id)[0] for _ in range(7)] == [201] * 7


# -- giving up on the provider's page -------------------------------------------------------------------------------


def test_coming_back_from_stripes_cancel_page_releases_the_seat(shop, fake_stripe):
    session_id = shop.session(capacity=1)
    _status, checkout = shop.checkout(session_id)
    cancel_url = fake_stripe.sessions[stripe_session_id(checkout)]["cancel_url"]
    assert cancel_url == checkout["ticket_url"] + "/cancelled"

    back = requests.get(cancel_url, timeout=10)  # what the browser does when the buyer clicks "back" on Stripe
    assert back.status_code == 200 and back.url == checkout["ticket_url"]
    assert "No payment was taken and the seat was released" in back.text
    assert shop.order(checkout["order_id"])["status"] == "cancelled"
    assert shop.seats_taken(session_id) == 0
    assert fake_stripe.sessions[stripe_session_id(checkout)]["status"] == "expired"  # it cannot be paid after all
    assert shop.checkout(session_id, email="next@example.com")[0] == 201  # the seat is for sale again

    again = requests.get(cancel_url, timeout=10)  # a reload changes nothing
    assert again.status_code == 200 and shop.order(checkout["order_id"])["status"] == "cancelled"


def test_coming_back_from_paypals_cancel_page_releases_the_seat(
    live_server, create_creator, paypal_config, fake_paypal
):
    shop = Shop(live_server(**paypal_config), create_creator()[1], provider="paypal")
    session_id = shop.session(capacity=1)
    _status, checkout = shop.checkout(session_id)

    back = requests.get(fake_paypal.cancel_url(paypal_order_id(checkout)), timeout=10)  # PayPal appends ?token=…
    assert back.status_code == 200 and "No payment was taken and the seat was released" in back.text
    assert shop.order(checkout["order_id"])["status"] == "cancelled"
    assert shop.seats_taken(session_id) == 0


def test_a_payment_made_before_coming_back_is_kept(shop, fake_stripe):
    """Paid in another tab, then "back" in this one: closing Stripe's page finds it paid, and the seat stays."""
    session_id = shop.session(capacity=1)
    _status, checkout = shop.checkout(session_id)
    fake_stripe.complete_session(stripe_session_id(checkout))  # its webhook is still on the way

    back = requests.get(checkout["ticket_url"] + "/cancelled", timeout=10)
    assert back.status_code == 200 and "You're in" in back.text
    assert shop.order(checkout["order_id"])["status"] == "paid" and shop.seats_taken(session_id) == 1


def test_when_the_provider_is_down_the_cancel_page_says_so_and_the_hold_runs_out_by_itself(shop, fake_stripe):
    session_id = shop.session(capacity=1)
    _status, checkout = shop.checkout(session_id)
    fake_stripe.fail_next.append((500, "api_error", "Stripe is having a bad day"))

    back = requests.get(checkout["ticket_url"] + "/cancelled", timeout=10)
    assert back.status_code == 200 and "could not be reached to close your payment page" in back.text
    assert shop.order(checkout["order_id"])["status"] == "pending" and shop.seats_taken(session_id) == 1
    assert "release my seat" in back.text  # the buyer can try again from the ticket
