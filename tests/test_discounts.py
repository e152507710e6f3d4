"""Discount codes: creators make them (API and dashboard), buyers enter them (sales page and API), the server computes
the price and sends it to Stripe or PayPal, and `max_uses` holds under concurrency as seats do."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from tests.conftest import Api, LiveShop, csrf_in, paypal_order_id, session_payload, stripe_session_id
from tests.test_web import csrf_token
from webinar_pay.extensions import db
from webinar_pay.models import DiscountCode, LiveSession, Order, utcnow
from webinar_pay.services.orders import expire_holds

CODES = "/api/v1/discount-codes"


def checkout(api: Api, session_id: int, code: str | None = None, email: str = "bo@example.com", **extra):
    body = {"name": "Bo Buyer", "email": email, "provider": "stripe", **extra}
    if code is not None:
        body["discount_code"] = code
    return api.post(f"/api/v1/sessions/{session_id}/checkout", body)


def uses(app, code_id: int) -> tuple[int, int]:
    """The code's counter, and how many orders hold a use: always equal."""
    with app.app_context():
        counter = db.session.get(DiscountCode, code_id).uses
        holding = db.session.scalar(
            select(func.count()).select_from(Order).where(Order.discount_code_id == code_id, Order.holds_discount)
        )
        return counter, holding


def seats_taken(app, session_id: int) -> int:
    with app.app_context():
        return db.session.get(LiveSession, session_id).seats_taken


def expire_order(app, order_id: int) -> int:
    """The order's hold runs out and the tick gives it back (without asking the provider)."""
    with app.app_context():
        db.session.execute(
            update(Order).where(Order.id == order_id).values(hold_expires_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
        return expire_holds(ask_provider=False)


# -- creating codes ----------------------------------------------------------------------------------------------------


def test_create_list_and_delete_codes_through_the_api(client, published_session):
    session_id, api = published_session()
    status, made = api.post(CODES, {"code": "launch-20", "percent_off": 20})
    assert status == 201, made
    assert made["code"] == "LAUNCH-20" and made["percent_off"] == 20 and made["amount_off"] is None
    assert (made["session_id"], made["max_uses"], made["uses"]) == (None, None, 0)
    status, vip = api.post(CODES, {"code": "VIP", "amount_off": 1000, "session_id": session_id, "max_uses": 5,
                                   "starts_at": "2030-01-01T00:00:00Z", "expires_at": "2030-02-01T00:00"})  # fmt: skip
    assert status == 201, vip
    # an amount off for one session takes its currency; a wall-clock time is the account's (Europe/Paris, UTC+1)
    assert (vip["currency"], vip["starts_at"], vip["expires_at"]) == (
        "EUR",
        "2030-01-01T00:00:00Z",
        "2030-01-31T23:00:00Z",
    )
    assert [code["code"] for code in api.get(CODES)[1]["discount_codes"]] == ["VIP", "LAUNCH-20"]

    status, body = api.post(CODES, {"code": "Launch-20", "percent_off": 10})
    assert (status, body["fields"]) == (422, {"code": "You already have this code."})  # case-insensitive

    response = client.delete(f"{CODES}/{made['id']}", headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 204
    assert [code["code"] for code in api.get(CODES)[1]["discount_codes"]] == ["VIP"]
    assert api.post(CODES, {"code": "launch-20", "percent_off": 10})[0] == 201  # a deleted code's text is free again


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"code": "x" * 33, "percent_off": 5}, {"code"}),
        ({"code": "ab", "percent_off": 5}, {"code"}),
        ({"code": "NO SPACE", "percent_off": 5}, {"code"}),
        ({"code": "ÉTÉ2030", "percent_off": 5}, {"code"}),
        ({"code": "<script>", "percent_off": 5}, {"code"}),
        ({"code": "A" * 100_000, "percent_off": 5}, {"code"}),
        ({"code": None, "percent_off": 5}, {"code"}),
        ({"code": 12345, "percent_off": 5}, {"code"}),
        ({"code": "OK123", "percent_off": 0}, {"percent_off"}),
        ({"code": "OK123", "percent_off": 101}, {"percent_off"}),
        ({"code": "OK123", "percent_off": "20"}, {"percent_off"}),
        ({"code": "OK123", "percent_off": 12.5}, {"percent_off"}),
        ({"code": "OK123"}, {"percent_off", "amount_off"}),
        ({"code": "OK123", "percent_off": 10, "amount_off": 100, "currency": "EUR"}, {"percent_off", "amount_off"}),
        ({"code": "OK123", "amount_off": 100}, {"currency"}),
        ({"code": "OK123", "amount_off": -1, "currency": "EUR"}, {"amount_off"}),
        ({"code": "OK123", "amount_off": 10**12, "currency": "EUR"}, {"amount_off"}),
        ({"code": "OK123", "amount_off": 100, "currency": "ABC"}, {"currency"}),
        ({"code": "OK123", "percent_off": 10, "max_uses": 0}, {"max_uses"}),
        ({"code": "OK123", "percent_off": 10, "max_uses": 10**9}, {"max_uses"}),
        ({"code": "OK123", "percent_off": 10, "session_id": 2**40}, {"session_id"}),
        ({"code": "OK123", "percent_off": 10, "starts_at": "tomorrow"}, {"starts_at"}),
        ({"code": "OK123", "percent_off": 10, "starts_at": "2030-01-02T00:00Z", "expires_at": "2030-01-01T00:00Z"},
         {"expires_at"}),
        ({"code": "OK123", "percent_off": 10, "colour": "red"}, {"colour"}),
    ],
)  # fmt: skip
def test_hostile_or_wrong_codes_are_refused_with_a_message(published_session, body, fields):
    _session_id, api = published_session()
    status, answer = api.post(CODES, body)
    assert status == 422 and answer["error"] == "validation_error", answer
    assert set(answer["fields"]) == fields and all(answer["fields"].values()), answer
    assert api.get(CODES)[1]["discount_codes"] == []


def test_other_creators_codes_are_invisible_and_never_apply(client, published_session, create_creator):
    session_id, api = published_session()
    _id, other_token = create_creator("other@example.com", "Olga Other")
    other = Api(client, other_token)
    status, theirs = other.post(CODES, {"code": "THEIRS", "percent_off": 50})
    assert status == 201
    assert other.post(CODES, {"code": "MINE", "percent_off": 50, "session_id": session_id})[1]["fields"] == {
        "session_id": "No such session."
    }
    assert api.get(CODES)[1]["discount_codes"] == []
    response = client.delete(f"{CODES}/{theirs['id']}", headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    status, body = checkout(Api(client), session_id, "theirs")
    assert (status, body["error"], body["message"]) == (
        422,
        "discount_code_invalid",
        "This discount code does not exist.",
    )
    assert api.post(CODES, {"code": "THEIRS", "percent_off": 10})[0] == 201  # unique per creator only


# -- buying with a code ------------------------------------------------------------------------------------------------


def test_a_percent_code_lowers_what_stripe_is_asked_for(app, client, published_session, fake_stripe):
    session_id, api = published_session(price=2500)
    api.post(CODES, {"code": "LAUNCH20", "percent_off": 20})
    status, started = checkout(Api(client), session_id, "  launch20 ")
    assert status == 201, started
    stripe_session = fake_stripe.sessions[stripe_session_id(started)]
    assert (stripe_session["amount_total"], stripe_session["currency"]) == (2000, "eur")
    order = api.get(f"/api/v1/orders/{started['order_id']}")[1]
    assert (order["amount"], order["discount_code"], order["discount_amount"]) == (2000, "LAUNCH20", 500)
    assert api.get(CODES)[1]["discount_codes"][0]["uses"] == 1


def test_percentages_round_half_up_and_amounts_never_go_below_zero(client, published_session, fake_stripe):
    session_id, api = published_session(price=999, capacity=5)
    api.post(CODES, {"code": "P15", "percent_off": 15})  # 149.85 off
    api.post(CODES, {"code": "BIG", "amount_off": 5000, "currency": "EUR"})
    status, started = checkout(Api(client), session_id, "p15", email="a@example.com")
    assert fake_stripe.sessions[stripe_session_id(started)]["amount_total"] == 849
    status, started = checkout(Api(client), session_id, "big", email="b@example.com")
    assert (status, started["status"]) == (201, "paid")  # 50.00 off 9.99: free, no provider
    order = api.get(f"/api/v1/orders/{started['order_id']}")[1]
    assert (order["amount"], order["discount_amount"], order["provider"]) == (0, 999, "free")


def test_a_hundred_percent_code_is_a_free_ticket_without_a_provider(client, published_session, fake_stripe):
    session_id, api = published_session(price=2500)
    api.post(CODES, {"code": "GUEST", "percent_off": 100, "max_uses": 1})
    status, started = checkout(Api(client), session_id, "guest")
    assert (status, started["status"]) == (201, "paid"), started
    assert fake_stripe.requests == []
    order = api.get(f"/api/v1/orders/{started['order_id']}")[1]
    assert (order["amount"], order["provider"], order["discount_code"], order["discount_amount"]) == (
        0, "free", "GUEST", 2500
    )  # fmt: skip
    ticket = client.get(started["ticket_url"].removeprefix("http://127.0.0.1:5000")).get_data(as_text=True)
    assert "Discount (GUEST)" in ticket and "−€25.00" in ticket


def test_paypal_is_asked_for_the_discounted_amount(live_server, create_creator, paypal_config, fake_paypal):
    server = live_server(demo=True, **paypal_config)
    shop = LiveShop(server, create_creator()[1], provider="paypal", paypal=fake_paypal)
    session_id = shop.session(price=3000, currency="JPY")
    assert shop.creator.post(CODES, {"code": "YEN500", "amount_off": 500, "currency": "jpy"})[0] == 201
    status, started = checkout(shop.buyer, session_id, "yen500", provider="paypal")
    assert status == 201, started
    units = fake_paypal.orders[paypal_order_id(started)]["purchase_units"][0]
    assert units["amount"] == {"currency_code": "JPY", "value": "2500"}
    requests.get(fake_paypal.approve(paypal_order_id(started))[0], timeout=10)
    order = shop.order(started["order_id"])
    assert (order["status"], order["amount"], order["discount_code"], order["discount_amount"]) == (
        "paid", 2500, "YEN500", 500
    )  # fmt: skip
    # An amount off in another currency does not apply to a session sold in euros.
    euros = shop.session(price=3000, currency="EUR")
    status, body = checkout(shop.buyer, euros, "YEN500", provider="paypal")
    assert (status, body["message"]) == (422, "This discount code does not apply to this session.")


def test_codes_that_cannot_be_used_are_refused_and_say_why(app, client, published_session, create_creator):
    session_id, api = published_session(capacity=5)
    other_session = api.post("/api/v1/sessions", session_payload())[1]["id"]
    now = utcnow().replace(microsecond=0)
    api.post(CODES, {"code": "LATER", "percent_off": 10, "starts_at": (now + timedelta(days=1)).isoformat()})
    api.post(CODES, {"code": "OVER", "percent_off": 10, "expires_at": (now - timedelta(minutes=1)).isoformat()})
    api.post(CODES, {"code": "ELSEWHERE", "percent_off": 10, "session_id": other_session})
    api.post(CODES, {"code": "ONCE", "percent_off": 10, "max_uses": 1})
    gone = api.post(CODES, {"code": "GONE", "percent_off": 10})[1]
    client.delete(f"{CODES}/{gone['id']}", headers={"Authorization": f"Bearer {api.token}"})
    buyer = Api(client)
    assert checkout(buyer, session_id, "once", email="first@example.com")[0] == 201
    expected = {
        "NOPE": "This discount code does not exist.",
        "GONE": "This discount code does not exist.",
        "LATER": "This discount code is not valid yet.",
        "OVER": "This discount code has expired.",
        "ELSEWHERE": "This discount code does not apply to this session.",
        "ONCE": "This discount code has been used up.",
    }
    for code, message in expected.items():
        status, body = checkout(buyer, session_id, code)
        assert (status, body["error"], body["message"]) == (422, "discount_code_invalid", message), code
        assert body["fields"] == {"discount_code": message}
    assert checkout(buyer, session_id, "x" * 500)[1]["fields"] == {
        "discount_code": "This discount code does not exist."
    }
    assert seats_taken(app, session_id) == 1  # refused buyers hold nothing
    assert checkout(buyer, session_id, "", email="nocode@example.com")[0] == 201  # blank: no code


def test_a_use_comes_back_when_an_unpaid_order_ends(app, client, published_session, fake_stripe):
    session_id, api = published_session(capacity=10)
    code = api.post(CODES, {"code": "ONE", "percent_off": 10, "max_uses": 1})[1]
    buyer = Api(client)

    _status, first = checkout(buyer, session_id, "one", email="first@example.com")
    assert uses(app, code["id"]) == (1, 1)
    assert checkout(buyer, session_id, "one", email="second@example.com")[1]["message"] == (
        "This discount code has been used up."
    )
    # the hold runs out: the use (and the seat) come back, lazily for the next buyer who asks
    with app.app_context():
        db.session.execute(
            update(Order).where(Order.id == first["order_id"]).values(hold_expires_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
    status, second = checkout(buyer, session_id, "one", email="second@example.com")
    assert status == 201, second
    assert api.get(f"/api/v1/orders/{first['order_id']}")[1]["status"] == "expired"
    assert uses(app, code["id"]) == (1, 1) and seats_taken(app, session_id) == 1

    # the buyer gives up on Stripe's page: the use comes back at once
    token = second["access_token"]
    assert client.get(f"/t/{token}/cancelled").status_code == 303
    assert uses(app, code["id"]) == (0, 0) and seats_taken(app, session_id) == 0

    # Stripe down: the order fails and holds nothing
    fake_stripe.fail_next.append((500, "api_error", "Stripe is down"))
    status, _body = checkout(buyer, session_id, "one", email="third@example.com")
    assert status == 503 and uses(app, code["id"]) == (0, 0)

    # the tick expires a hold: the use comes back too
    _status, fourth = checkout(buyer, session_id, "one", email="fourth@example.com")
    assert expire_order(app, fourth["order_id"]) == 1 and uses(app, code["id"]) == (0, 0)


def test_a_late_payment_whose_code_was_used_up_meanwhile_is_refunded(live_server, create_creator, fake_stripe):
    shop = LiveShop(live_server(), create_creator()[1], stripe=fake_stripe)
    session_id = shop.session(capacity=5)
    code = shop.creator.post(CODES, {"code": "ONE", "percent_off": 10, "max_uses": 1})[1]
    _status, late = checkout(shop.buyer, session_id, "one", email="late@example.com")
    assert expire_order(shop.app, late["order_id"]) == 1
    _status, other = checkout(shop.buyer, session_id, "one", email="other@example.com")
    assert shop.webhook(fake_stripe.complete_session(stripe_session_id(other))) == "paid"
    assert shop.webhook(fake_stripe.complete_session(stripe_session_id(late))) == "refunded_discount_used_up"
    assert shop.order(late["order_id"])["status"] == "refunded"
    assert uses(shop.app, code["id"]) == (1, 1) and shop.seats_taken(session_id) == 1
    # a paid order keeps its use, also once refunded: the discount was given
    assert shop.refund(other["order_id"])[0] == 201
    assert shop.order(other["order_id"])["status"] == "refunded" and uses(shop.app, code["id"]) == (1, 1)


def test_fifty_buyers_race_for_a_code_with_ten_uses(live_server, create_creator):
    server = live_server(HOLDS_PER_CLIENT=0)  # fifty buyers on this machine: no limit per client address
    creator = Api(server.url, create_creator()[1])
    session_id = creator.post("/api/v1/sessions", session_payload(capacity=100))[1]["id"]
    creator.post(f"/api/v1/sessions/{session_id}/publish")
    code = creator.post(CODES, {"code": "TEN", "percent_off": 30, "max_uses": 10})[1]

    def buy(i: int) -> tuple[int, str]:
        response = requests.post(
            f"{server.url}/api/v1/sessions/{session_id}/checkout",
            json={"name": f"Buyer {i}", "email": f"buyer{i}@example.com", "provider": "stripe", "discount_code": "ten"},
            timeout=60,
        )
        return response.status_code, response.json().get("error", "")

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(buy, range(50)))

    assert answers.count((201, "")) == 10, answers
    assert answers.count((422, "discount_code_invalid")) == 40, answers
    assert uses(server.app, code["id"]) == (10, 10)
    assert seats_taken(server.app, session_id) == 10  # the refused buyers' seats went back with their refusal
    assert creator.get(CODES)[1]["discount_codes"][0]["uses"] == 10


# -- the pages ---------------------------------------------------------------------------------------------------------


def test_the_sales_page_shows_the_discounted_price_before_payment(client, published_session, fake_stripe):
    session_id, api = published_session(price=2500)
    api.post(CODES, {"code": "LAUNCH20", "percent_off": 20})
    page = client.get(f"/s/{session_id}").get_data(as_text=True)
    assert 'name="discount_code"' in page and "Pay €25.00" in page
    token = csrf_in(page)
    form = {"csrf_token": token, "name": "", "email": "", "provider": "stripe", "discount_code": "launch20"}

    applied = client.post(f"/s/{session_id}/checkout", data={**form, "action": "apply"})
    page = applied.get_data(as_text=True)
    assert applied.status_code == 200 and "Discount (LAUNCH20)" in page and "−€5.00" in page
    assert "You pay" in page and "Pay €20.00" in page and 'value="launch20"' in page

    refused = client.post(f"/s/{session_id}/checkout", data={**form, "action": "apply", "discount_code": "nope"})
    assert refused.status_code == 422 and "This discount code does not exist." in refused.get_data(as_text=True)
    assert "Pay €25.00" in refused.get_data(as_text=True)

    shared = client.get(f"/s/{session_id}?code=launch20").get_data(as_text=True)
    assert "Pay €20.00" in shared

    paid = client.post(f"/s/{session_id}/checkout", data={**form, "name": "Bo", "email": "bo@example.com",
                                                           "action": "pay"})  # fmt: skip
    assert paid.status_code == 303
    stripe_id = paid.location.rsplit("/", 1)[1]
    assert fake_stripe.sessions[stripe_id]["amount_total"] == 2000


def test_a_full_discount_turns_the_sales_page_into_a_free_registration(client, published_session, fake_stripe):
    session_id, api = published_session(price=2500)
    api.post(CODES, {"code": "FRIEND", "percent_off": 100})
    token = csrf_token(client, f"/s/{session_id}")
    form = {"csrf_token": token, "name": "Bo", "email": "bo@example.com", "discount_code": "friend"}
    page = client.post(f"/s/{session_id}/checkout", data={**form, "action": "apply"}).get_data(as_text=True)
    assert "Register for free" in page and 'name="provider"' not in page
    response = client.post(f"/s/{session_id}/checkout", data={**form, "action": "pay"})
    assert response.status_code == 303 and "/t/" in response.location and fake_stripe.requests == []


def test_the_dashboard_codes_page(live_server, create_creator, fake_stripe):
    shop = LiveShop(live_server(), create_creator()[1], stripe=fake_stripe)
    session_id = shop.session(price=4000, title="Ink drawing")
    browser = shop.dashboard()
    assert "/dashboard/discount-codes" in browser.get(f"{shop.url}/dashboard/", timeout=10).text
    page = browser.get(f"{shop.url}/dashboard/discount-codes", timeout=10).text
    form = {"csrf_token": csrf_in(page), "code": "ink10", "percent_off": "", "amount_off": "10.00", "currency": "",
            "session_id": str(session_id), "max_uses": "3", "starts_at": "",
            "expires_at": "2030-01-01T10:00"}  # fmt: skip
    created = browser.post(f"{shop.url}/dashboard/discount-codes", data=form, timeout=10)
    assert "Discount code INK10 created." in created.text
    row = re.search(r'<tr id="code-(\d+)">(.*?)</tr>', created.text, re.S)
    assert "€10.00" in row[2] and "Ink drawing" in row[2] and "0 / 3" in row[2]
    code = shop.creator.get(CODES)[1]["discount_codes"][0]
    assert (code["amount_off"], code["currency"], code["expires_at"]) == (1000, "EUR", "2030-01-01T09:00:00Z")

    refused = browser.post(f"{shop.url}/dashboard/discount-codes", timeout=10,
                           data={**form, "code": "bad code!", "amount_off": "abc"})  # fmt: skip
    assert refused.status_code == 422 and "letters, digits, - or _" in refused.text

    _status, started = checkout(shop.buyer, session_id, "ink10")
    assert shop.webhook(fake_stripe.complete_session(stripe_session_id(started))) == "paid"
    page = browser.get(f"{shop.url}/dashboard/discount-codes", timeout=10).text
    assert "1 / 3" in re.search(r'<tr id="code-\d+">(.*?)</tr>', page, re.S)[1]
    order_page = browser.get(f"{shop.url}/dashboard/orders/{started['order_id']}", timeout=10).text
    assert "Discount (INK10)" in order_page and "−€10.00" in order_page and "€30.00" in order_page

    deleted = browser.post(f"{shop.url}/dashboard/discount-codes/{row[1]}/delete", timeout=10,
                           data={"csrf_token": csrf_in(page)})  # fmt: skip
    assert "Discount code INK10 deleted" in deleted.text and "No discount codes yet." in deleted.text
    assert shop.order(started["order_id"])["discount_code"] == "INK10"  # the order keeps its code
    assert checkout(shop.buyer, session_id, "ink10", email="late@example.com")[0] == 422
