"""Creator refunds, refunds and disputes reported by the providers, and the order page's audit trail.

Over HTTP against the app, the real `stripe` library, our PayPal client and the fakes on 127.0.0.1.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from tests.conftest import Api, LiveShop, all_at_once, session_payload
from tests.test_openapi import Contract
from webinar_pay.extensions import db
from webinar_pay.models import Refund, utcnow
from webinar_pay.services.refunds import process_refunds
from webinar_pay.web.openapi import OPENAPI


class Shop(LiveShop):
    """A running app selling through `provider` (both fakes configured), with helpers to look at refunds."""

    def _payment_ref(self, order_id: int) -> str:
        from webinar_pay.models import Order

        return db.session.get(Order, order_id).payment_ref

    def refunds(self, order_id: int) -> list[tuple]:
        return self.db(lambda: [
            (r.amount, r.status)
            for r in db.session.scalars(select(Refund).where(Refund.order_id == order_id).order_by(Refund.id))
        ])  # fmt: skip


@pytest.fixture(params=["stripe", "paypal"])
def shop(request, live_server, create_creator, paypal_config, fake_stripe, fake_paypal):
    server = live_server(**paypal_config)  # both providers configured
    return Shop(server, create_creator()[1], request.param, stripe=fake_stripe, paypal=fake_paypal)


@pytest.fixture
def stripe_shop(live_server, create_creator, paypal_config, fake_stripe, fake_paypal, smtp):
    server = live_server(**paypal_config, **smtp.config)
    return Shop(server, create_creator()[1], "stripe", stripe=fake_stripe, paypal=fake_paypal)


def provider_refunds(shop: Shop, order_id: int) -> list[int]:
    """What the provider itself holds as refunded for this order, in minor units."""
    ref = shop.db(lambda: shop._payment_ref(order_id))
    if shop.provider == "stripe":
        return [r["amount"] for r in shop.stripe.refunds.values() if r["payment_intent"] == ref]
    return [int(float(r["amount"]["value"]) * 100) for r in shop.paypal.refunds.values() if r["_capture_id"] == ref]


# -- creator refunds ------------------------------------------------------------------------------------------------


def test_full_refund_frees_the_seat_revokes_access_and_tells_the_buyer(shop):
    session_id = shop.session(price=4900, capacity=1)
    checkout = shop.paid_order(session_id)
    order_id = checkout["order_id"]

    status, body = shop.refund(order_id)
    assert status == 201, body
    assert body["refund"]["status"] == "succeeded" and body["refund"]["amount"] == 4900
    assert body["refund"]["provider_refund_id"]
    assert body["order"]["status"] == "refunded"
    assert body["order"]["enrollment"]["status"] == "cancelled"
    assert provider_refunds(shop, order_id) == [4900]
    assert shop.seats_taken(session_id) == 0
    emails = shop.emails(order_id)
    assert emails["refund"] == "pending" and emails["reminder:60"] == "cancelled"
    assert "This order was refunded" in requests.get(checkout["ticket_url"], timeout=10).text
    join = requests.get(shop.join_url(order_id), allow_redirects=False, timeout=10)
    assert join.status_code == 403
    assert shop.paid_order(session_id, "next@example.com")  # the seat is for sale again

    status, body = shop.refund(order_id)
    assert status == 409 and body["error"] == "conflict"
    assert provider_refunds(shop, order_id) == [4900]


def test_partial_refunds_then_the_rest(shop):
    session_id = shop.session(price=5000)
    order_id = shop.paid_order(session_id)["order_id"]

    status, body = shop.refund(order_id, {"amount": 1500})
    assert status == 201 and body["refund"]["amount"] == 1500 and body["refund"]["status"] == "succeeded"
    assert body["order"]["status"] == "paid" and body["order"]["enrollment"]["status"] == "enrolled"
    assert shop.seats_taken(session_id) == 1 and "refund" not in shop.emails(order_id)

    status, body = shop.refund(order_id, {"amount": 4000})
    assert status == 422 and "3500" in body["fields"]["amount"]

    status, body = shop.refund(order_id)  # all that is left
    assert status == 201 and body["refund"]["amount"] == 3500 and body["order"]["status"] == "refunded"
    assert sorted(provider_refunds(shop, order_id)) == [1500, 3500]
    assert shop.refunds(order_id) == [(1500, "succeeded"), (3500, "succeeded")]
    assert shop.seats_taken(session_id) == 0


def test_the_same_refund_requested_twice_at_once_is_sent_once(shop):
    order_id = shop.paid_order(shop.session(price=3000))["order_id"]

    # A client retrying one refund (one key) while the first try is still running.
    keyed = all_at_once(*[lambda: shop.refund(order_id, {"amount": 1000}, key="same-key")] * 2)
    assert sorted(status for status, _body in keyed) == [200, 201], keyed
    assert len({body["refund"]["id"] for _status, body in keyed}) == 1
    assert provider_refunds(shop, order_id) == [1000]

    # Two people pressing "refund everything" at the same moment.
    full = all_at_once(*[lambda: shop.refund(order_id)] * 2)
    assert sorted(status for status, _body in full) == [201, 409], full
    assert sorted(provider_refunds(shop, order_id)) == [1000, 2000]  # never more than was paid
    assert shop.refunds(order_id) == [(1000, "succeeded"), (2000, "succeeded")]
    assert shop.order(order_id)["status"] == "refunded"


def test_refund_input_errors_change_nothing(shop):
    session_id = shop.session(price=2000)
    order_id = shop.paid_order(session_id)["order_id"]
    for body in ({"amount": "ten"}, {"amount": 0}, {"amount": 2001}, {"amount": True}, {"amount": 12.5}):
        status, answer = shop.refund(order_id, body)
        assert status == 422 and "amount" in answer["fields"], (body, answer)
    response = requests.post(
        f"{shop.url}/api/v1/orders/{order_id}/refund",
        data="[1]",
        headers={"Authorization": f"Bearer {shop.creator.token}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 422
    assert shop.refund(order_id, key="x" * 65)[0] == 422
    assert shop.refund(999_999)[0] == 404
    assert requests.post(f"{shop.url}/api/v1/orders/{order_id}/refund", timeout=10).status_code == 401
    assert shop.refunds(order_id) == [] and provider_refunds(shop, order_id) == []
    assert shop.order(order_id)["status"] == "paid"


def test_an_unpaid_order_cannot_be_refunded(shop):
    session_id = shop.session()
    status, checkout = Api(shop.url).post(
        f"/api/v1/sessions/{session_id}/checkout", {"name": "Bo", "email": "bo@example.com", "provider": shop.provider}
    )
    status, body = shop.refund(checkout["order_id"])
    assert status == 409 and "pending" in body["message"]


def test_a_refund_the_provider_refuses_is_shown_and_recorded_as_failed(shop):
    order_id = shop.paid_order(shop.session(price=2500))["order_id"]
    if shop.provider == "stripe":
        shop.stripe.fail_next.append((400, "invalid_request_error", "Charge is too old to refund"))
    else:
        shop.paypal.fail_next.append((422, "UNPROCESSABLE_ENTITY", "Capture too old", "REFUND_TIME_LIMIT_EXCEEDED"))
    status, body = shop.refund(order_id)
    assert status == 409 and body["error"] == "refund_refused"
    assert shop.refunds(order_id) == [(2500, "failed")]
    assert shop.order(order_id)["status"] == "paid"
    page = shop.dashboard().get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    assert "Refund failed" in page and 'class="refund-failed"' in page

    status, body = shop.refund(order_id)  # the creator tries again once the cause is fixed
    assert status == 201 and body["order"]["status"] == "refunded"


def test_a_refund_that_fails_for_now_is_retried_by_the_worker(stripe_shop):
    shop = stripe_shop
    order_id = shop.paid_order(shop.session(price=2500))["order_id"]
    shop.stripe.fail_next.append((500, "api_error", "Stripe is having a bad day"))
    status, body = shop.refund(order_id)
    assert status == 201 and body["refund"]["status"] == "pending" and "bad day" in body["refund"]["last_error"]
    assert body["order"]["status"] == "paid"
    assert shop.db(lambda: process_refunds(now=utcnow() + timedelta(minutes=10))) == 1
    assert shop.refunds(order_id) == [(2500, "succeeded")]
    assert shop.order(order_id)["status"] == "refunded"


def test_refund_responses_match_the_openapi_document(shop):
    order_id = shop.paid_order(shop.session(price=2000))["order_id"]
    contract = Contract(shop.app.test_client(), OPENAPI)
    token = shop.creator.token
    contract.call("POST", "/orders/{order_id}/refund", 201, body={"amount": 500}, token=token, order_id=order_id)
    contract.call("POST", "/orders/{order_id}/refund", 422, body={"amount": 5000}, token=token, order_id=order_id)
    contract.call("POST", "/orders/{order_id}/refund", 201, token=token, order_id=order_id)
    contract.call("POST", "/orders/{order_id}/refund", 409, token=token, order_id=order_id)


# -- the dashboard ----------------------------------------------------------------------------------------------------


def test_creator_refunds_from_the_order_page_and_sees_the_history(shop):
    session_id = shop.session(price=4000)
    order_id = shop.paid_order(session_id)["order_id"]
    browser = shop.dashboard()
    listing = browser.get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    assert f'href="/dashboard/orders/{order_id}"' in listing

    page = browser.get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    assert 'id="refund-form"' in page and 'value="40.00"' not in page  # typed, not prefilled
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)[1]
    form = {"csrf_token": token, "idempotency_key": key, "amount": "10.00"}

    bad = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data={**form, "amount": "ten"}, timeout=10)
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    asked = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data=form, timeout=10)
    assert asked.status_code == 200 and 'id="confirm-refund"' in asked.text and shop.refunds(order_id) == []
    form["confirm"] = "yes"
    done = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data=form, timeout=10)
    assert done.status_code == 200 and "Refunded €10.00." in done.text
    again = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data=form, timeout=10)  # double submit
    assert again.status_code == 200
    assert shop.refunds(order_id) == [(1000, "succeeded")]

    history = again.text.split('id="audit-trail"')[1]
    assert "buyer" in history and "pending" in history and "paid" in history
    assert "Refund of €10.00 requested." in history and "creator creator@example.com" in history
    assert "Refunded €10.00" in history
    assert ("stripe checkout.session.completed" if shop.provider == "stripe" else "paypal") in history


def test_another_creator_cannot_see_or_refund_the_order(shop, create_creator):
    order_id = shop.paid_order(shop.session())["order_id"]
    other = Api(shop.url, create_creator(email="other@example.com")[1])
    assert other.post(f"/api/v1/orders/{order_id}/refund")[0] == 404
    assert shop.refunds(order_id) == []


# -- what the providers report --------------------------------------------------------------------------------------


def test_a_refund_made_in_the_stripe_dashboard_refunds_the_order(stripe_shop):
    shop = stripe_shop
    session_id = shop.session(price=3000)
    order_id = shop.paid_order(session_id)["order_id"]
    intent = shop.db(lambda: shop._payment_ref(order_id))

    partial = shop.webhook(shop.stripe.refund_from_dashboard(intent, 1000))
    assert partial == "partial_refund_recorded"
    assert shop.order(order_id)["status"] == "paid"
    event = shop.stripe.refund_from_dashboard(intent)
    response = shop.webhook(event)
    assert response == "refunded"
    assert shop.order(order_id)["status"] == "refunded" and shop.seats_taken(session_id) == 0
    assert shop.emails(order_id)["refund"] == "pending"
    assert shop.webhook(event) == "duplicate"


def test_the_notice_of_our_own_refund_changes_nothing_more(stripe_shop):
    shop = stripe_shop
    order_id = shop.paid_order(shop.session(price=3000))["order_id"]
    intent = shop.db(lambda: shop._payment_ref(order_id))
    assert shop.refund(order_id, {"amount": 1000})[0] == 201
    notice = shop.stripe.event("charge.refunded", shop.stripe.charge(intent))
    assert shop.webhook(notice) == "own_refund"
    assert shop.order(order_id)["status"] == "paid"


def test_a_pending_stripe_refund_completes_by_webhook(stripe_shop):
    shop = stripe_shop
    session_id = shop.session(price=3000)
    order_id = shop.paid_order(session_id)["order_id"]
    shop.stripe.next_refund_status = "pending"
    status, body = shop.refund(order_id)
    assert status == 201 and body["refund"]["status"] == "pending" and body["order"]["status"] == "paid"
    assert shop.db(lambda: process_refunds(now=utcnow() + timedelta(hours=1))) == 0  # nothing is sent twice

    event = shop.stripe.update_refund(body["refund"]["provider_refund_id"], "succeeded")
    assert shop.webhook(event) == "refund_succeeded"
    assert shop.order(order_id)["status"] == "refunded" and shop.seats_taken(session_id) == 0
    assert shop.webhook(event) == "duplicate"


def test_a_stripe_refund_that_fails_later_is_shown(stripe_shop):
    shop = stripe_shop
    order_id = shop.paid_order(shop.session(price=3000))["order_id"]
    shop.stripe.next_refund_status = "pending"
    _status, body = shop.refund(order_id, {"amount": 1000})
    event = shop.stripe.update_refund(body["refund"]["provider_refund_id"], "failed", "expired_or_canceled_card")
    assert shop.webhook(event) == "refund_failed"
    assert shop.refunds(order_id) == [(1000, "failed")]
    page = shop.dashboard().get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    assert "failed at stripe" in page


def test_dispute_opened_and_won(stripe_shop, smtp):
    shop = stripe_shop
    session_id = shop.session(price=3000)
    order_id = shop.paid_order(session_id)["order_id"]
    intent = shop.db(lambda: shop._payment_ref(order_id))

    opened = shop.stripe.open_dispute(intent)
    assert shop.webhook(opened) == "disputed"
    assert shop.order(order_id)["status"] == "disputed"
    [alert] = smtp.to("creator@example.com")
    assert "Payment disputed" in alert.subject and "bo@example.com" in alert.text
    assert f"/dashboard/orders/{order_id}" in alert.text
    browser = shop.dashboard()
    assert 'id="dispute-warning"' in browser.get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    page = browser.get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    assert 'id="dispute-warning"' in page and 'id="refund-form"' not in page
    assert shop.refund(order_id)[0] == 409  # the bank holds the money: no refund on top
    assert shop.webhook(opened) == "duplicate"
    assert len(smtp.to("creator@example.com")) == 1

    dispute_id = next(iter(d for d in shop.stripe.disputes if shop.stripe.disputes[d]["payment_intent"] == intent))
    assert shop.webhook(shop.stripe.close_dispute(dispute_id, "won")) == "dispute_won"
    assert shop.order(order_id)["status"] == "paid" and shop.seats_taken(session_id) == 1
    assert "Dispute closed" in smtp.to("creator@example.com")[-1].subject


def test_dispute_lost_refunds_the_order(stripe_shop):
    shop = stripe_shop
    session_id = shop.session(price=3000)
    checkout = shop.paid_order(session_id)
    order_id = checkout["order_id"]
    intent = shop.db(lambda: shop._payment_ref(order_id))
    shop.webhook(shop.stripe.open_dispute(intent))
    dispute_id = next(d for d in shop.stripe.disputes if shop.stripe.disputes[d]["payment_intent"] == intent)
    assert shop.webhook(shop.stripe.close_dispute(dispute_id, "lost")) == "dispute_lost"
    order = shop.order(order_id)
    assert order["status"] == "refunded" and order["enrollment"]["status"] == "cancelled"
    assert shop.seats_taken(session_id) == 0
    history = shop.dashboard().get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    assert "Dispute opened (fraudulent)" in history and "Dispute lost" in history


def test_refund_and_dispute_events_for_unknown_payments_are_recorded_only(stripe_shop):
    shop = stripe_shop
    order_id = shop.paid_order(shop.session(price=3000))["order_id"]
    intent = shop.db(lambda: shop._payment_ref(order_id))
    charge = shop.stripe.charge(intent)
    charge["payment_intent"] = "pi_not_ours"
    assert shop.webhook(shop.stripe.event("charge.refunded", charge)) == "unknown_order"
    refund = {"id": "re_not_ours", "object": "refund", "status": "succeeded", "amount": 5, "currency": "eur"}
    assert shop.webhook(shop.stripe.event("refund.updated", refund)) == "unknown_refund"
    assert shop.order(order_id)["status"] == "paid"


# -- attendees cancelling --------------------------------------------------------------------------------------------


def _cancel_from_ticket(ticket_url: str) -> requests.Response:
    """Press the cancel button and confirm, or (when the page shows none) post the confirmation anyway, as a stale
    tab would."""
    browser = requests.Session()
    page = browser.get(ticket_url, timeout=10).text
    if 'id="self-cancel"' in page:
        page = browser.get(ticket_url + "/cancel", timeout=10).text
        assert 'id="confirm-self-cancel"' in page, page
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if found is None:  # no form on the page: take a valid token from the sales page
        page = browser.get(ticket_url.split("/t/")[0] + "/", timeout=10).text
        session_link = re.search(r'href="(/s/\d+)"', page)[1]
        found = re.search(
            r'name="csrf_token" value="([^"]+)"', browser.get(ticket_url.split("/t/")[0] + session_link).text
        )
    return browser.post(ticket_url + "/cancel", data={"csrf_token": found[1], "confirm": "yes"}, timeout=30)


def test_self_cancel_within_the_policy_refunds_automatically(shop):
    session_id = shop.session(price=3000, capacity=1, cancellation_hours=48)
    assert shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["cancellation_hours"] == 48
    sales_page = requests.get(f"{shop.url}/s/{session_id}", timeout=10).text
    assert "You can cancel for a full refund until" in sales_page and "48 hours before the start" in sales_page
    checkout = shop.paid_order(session_id)
    ticket = requests.get(checkout["ticket_url"], timeout=10).text
    assert "48 hours before the start" in ticket and 'id="self-cancel"' in ticket and "refund €30.00" in ticket

    response = _cancel_from_ticket(checkout["ticket_url"])
    assert response.status_code == 200 and "This order was refunded" in response.text
    assert "€30.00: succeeded" in response.text and 'id="self-cancel"' not in response.text
    order = shop.order(checkout["order_id"])
    assert order["status"] == "refunded" and order["enrollment"]["status"] == "cancelled"
    assert provider_refunds(shop, checkout["order_id"]) == [3000]
    assert shop.seats_taken(session_id) == 0 and shop.emails(checkout["order_id"])["refund"] == "pending"
    history = shop.dashboard().get(f"{shop.url}/dashboard/orders/{checkout['order_id']}", timeout=10).text
    assert "Cancelled by the attendee within the cancellation policy." in history

    # The button is gone; a replayed form post is refused and refunds nothing twice.
    replay = _cancel_from_ticket(checkout["ticket_url"])
    assert replay.status_code == 409 and "nothing to cancel" in replay.text
    assert provider_refunds(shop, checkout["order_id"]) == [3000]


def test_self_cancel_outside_the_policy_says_why_and_changes_nothing(stripe_shop):
    shop = stripe_shop
    session_id = shop.session(price=3000, cancellation_hours=24 * 8)  # the session starts in 7 days
    checkout = shop.paid_order(session_id)
    ticket = requests.get(checkout["ticket_url"], timeout=10).text
    assert "Cancellations with a refund closed on" in ticket and 'id="self-cancel"' not in ticket
    response = _cancel_from_ticket(checkout["ticket_url"])
    assert response.status_code == 409 and "closed 192 hours before the start" in response.text
    assert shop.order(checkout["order_id"])["status"] == "paid" and shop.refunds(checkout["order_id"]) == []


def test_without_a_policy_attendees_cannot_cancel(stripe_shop):
    shop = stripe_shop
    session_id = shop.session(price=3000)
    assert "does not offer cancellations" in requests.get(f"{shop.url}/s/{session_id}", timeout=10).text
    checkout = shop.paid_order(session_id)
    response = _cancel_from_ticket(checkout["ticket_url"])
    assert response.status_code == 409 and "does not allow cancellations" in response.text
    assert shop.order(checkout["order_id"])["status"] == "paid"


def test_self_cancel_while_the_provider_is_down_is_refunded_by_the_worker(stripe_shop):
    shop = stripe_shop
    session_id = shop.session(price=3000, cancellation_hours=0)
    checkout = shop.paid_order(session_id)
    shop.stripe.fail_next.append((503, "api_error", "Stripe is unavailable"))
    response = _cancel_from_ticket(checkout["ticket_url"])
    assert response.status_code == 200 and "€30.00: pending" in response.text
    assert shop.order(checkout["order_id"])["status"] == "refunded" and shop.seats_taken(session_id) == 0
    assert shop.db(lambda: process_refunds(now=utcnow() + timedelta(minutes=10))) == 1
    assert shop.refunds(checkout["order_id"]) == [(3000, "succeeded")]


def test_the_policy_is_validated_and_edited_in_the_dashboard(stripe_shop):
    shop = stripe_shop
    status, body = shop.creator.post("/api/v1/sessions", session_payload(cancellation_hours=-1))
    assert status == 422 and "cancellation_hours" in body["fields"]
    session_id = shop.session(cancellation_hours=0)
    browser = shop.dashboard()
    form = browser.get(f"{shop.url}/dashboard/sessions/{session_id}/edit", timeout=10).text
    assert re.search(r'id="cancellation_hours" name="cancellation_hours" type="number" value="0"', form)
    status, body = shop.creator.patch(f"/api/v1/sessions/{session_id}", {"cancellation_hours": None})
    assert status == 200 and body["cancellation_hours"] is None


# -- reconciliation ---------------------------------------------------------------------------------------------------


def test_reconcile_lists_where_the_providers_and_we_disagree(stripe_shop):
    shop = stripe_shop
    session_id = shop.session(price=2500, capacity=10)
    agreed = shop.paid_order(session_id, "agreed@example.com")["order_id"]
    silent = shop.paid_order(session_id, "silent@example.com")["order_id"]
    ours_only = shop.paid_order(session_id, "ours@example.com")["order_id"]
    shop.provider = "paypal"
    paypal = shop.paid_order(session_id, "pp@example.com")["order_id"]
    shop.provider = "stripe"
    assert shop.refund(agreed)[0] == 201

    # Refunded in Stripe's dashboard and at PayPal, their webhooks lost; and a refund of ours Stripe no longer shows.
    shop.stripe.refund_from_dashboard(shop.db(lambda: shop._payment_ref(silent)))
    capture = shop.db(lambda: shop._payment_ref(paypal))
    shop.paypal.refund_from_dashboard(capture)
    assert shop.refund(ours_only)[0] == 201
    intent = shop.db(lambda: shop._payment_ref(ours_only))
    del shop.stripe.refunds[next(r for r, v in shop.stripe.refunds.items() if v["payment_intent"] == intent)]

    today = utcnow().strftime("%Y-%m-%d")
    result = shop.app.test_cli_runner().invoke(args=["reconcile", "--from", today, "--to", today])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)
    lines = {int(line.split("\t")[0].split()[1]): line for line in result.output.splitlines() if "\t" in line}
    assert set(lines) == {silent, ours_only, paypal}, result.output
    assert "refunded_there_not_here" in lines[silent] and "refunded_there_not_here" in lines[paypal]
    assert "refunded_here_not_there" in lines[ours_only]
    assert "3 differences" in result.output

    yesterday = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d")
    quiet = shop.app.test_cli_runner().invoke(args=["reconcile", "--from", yesterday, "--to", yesterday])
    assert quiet.exit_code == 0 and "0 differences" in quiet.output
    bad = shop.app.test_cli_runner().invoke(args=["reconcile", "--from", today, "--to", yesterday])
    assert bad.exit_code == 2 and "--to is before --from" in bad.output


# -- retries only give back what is left --------------------------------------------------------------------------


def _refuse_next_refund(shop: Shop) -> None:
    if shop.provider == "stripe":
        shop.stripe.fail_next.append((400, "invalid_request_error", "Charge is too old to refund"))
    else:
        shop.paypal.fail_next.append((422, "UNPROCESSABLE_ENTITY", "Capture too old", "REFUND_TIME_LIMIT_EXCEEDED"))


def _refund_calls(shop: Shop) -> int:
    """Every refund request the provider has received (refused ones too)."""
    if shop.provider == "stripe":
        return len([r for r in shop.stripe.requests if r.method == "POST" and r.path == "/v1/refunds"])
    return len([r for r in shop.paypal.requests if r.path.endswith("/refund")])


def _failed_refund_id(shop: Shop, order_id: int) -> int:
    return shop.db(lambda: db.session.scalar(
        select(Refund.id).where(Refund.order_id == order_id, Refund.status == "failed")
    ))  # fmt: skip


def _retry(shop: Shop, browser: requests.Session, order_id: int, refund_id: int) -> requests.Response:
    page = browser.get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    return browser.post(
        f"{shop.url}/dashboard/orders/{order_id}/refunds/{refund_id}/retry", data={"csrf_token": token}, timeout=10
    )


def test_a_failed_refund_is_not_sent_again_once_the_payment_was_refunded_otherwise(shop):
    order_id = shop.paid_order(shop.session(price=5000))["order_id"]
    _refuse_next_refund(shop)
    assert shop.refund(order_id, {"amount": 2000})[0] == 409
    failed = _failed_refund_id(shop, order_id)
    status, body = shop.refund(order_id)  # the creator refunds everything instead
    assert status == 201 and body["refund"]["amount"] == 5000 and body["order"]["status"] == "refunded"
    calls = _refund_calls(shop)

    browser = shop.dashboard()
    retried = _retry(shop, browser, order_id, failed)
    assert retried.status_code == 409
    assert "Not sent: €50.00, all of the payment, has been refunded otherwise." in retried.text
    assert shop.db(lambda: process_refunds(now=utcnow() + timedelta(hours=1))) == 0
    assert _refund_calls(shop) == calls  # nothing went to the provider again
    assert provider_refunds(shop, order_id) == [5000]
    assert shop.refunds(order_id) == [(2000, "cancelled"), (5000, "succeeded")]

    page = browser.get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    row = page.split('class="refund-cancelled"')[1].split("</tr>")[0]
    assert "has been refunded otherwise" in row and "Retry" not in row
    assert "Refund of €20.00 cancelled." in page.split('id="audit-trail"')[1]
    assert 'id="refunded-total">€50.00<' in page


def test_a_retried_refund_gives_back_only_what_is_left(shop):
    order_id = shop.paid_order(shop.session(price=5000))["order_id"]
    _refuse_next_refund(shop)
    assert shop.refund(order_id, {"amount": 2000})[0] == 409
    failed = _failed_refund_id(shop, order_id)
    assert shop.refund(order_id, {"amount": 4000})[0] == 201  # 1000 is left

    retried = _retry(shop, shop.dashboard(), order_id, failed)
    assert retried.status_code == 200 and "will be sent again" in retried.text
    assert shop.db(lambda: process_refunds(now=utcnow() + timedelta(minutes=1))) == 1
    assert sorted(provider_refunds(shop, order_id)) == [1000, 4000]
    assert shop.refunds(order_id) == [(2000, "cancelled"), (4000, "succeeded"), (1000, "succeeded")]
    assert shop.order(order_id)["status"] == "refunded"


def test_the_worker_does_not_send_a_refund_that_later_refunds_made_unnecessary(stripe_shop):
    """A failed refund put back in the queue before this check existed: the worker re-reads what is left first."""
    shop = stripe_shop
    order_id = shop.paid_order(shop.session(price=3000))["order_id"]
    _refuse_next_refund(shop)
    assert shop.refund(order_id, {"amount": 1000})[0] == 409
    failed = _failed_refund_id(shop, order_id)
    assert shop.refund(order_id)[0] == 201
    shop.db(lambda: db.session.execute(
        update(Refund).where(Refund.id == failed).values(status="pending", next_attempt_at=utcnow())
    ))  # fmt: skip
    calls = _refund_calls(shop)

    assert shop.db(lambda: process_refunds(now=utcnow() + timedelta(minutes=1))) == 0
    assert _refund_calls(shop) == calls and provider_refunds(shop, order_id) == [3000]
    assert shop.refunds(order_id) == [(1000, "cancelled"), (3000, "succeeded")]


def test_an_amount_no_integer_can_hold_is_refused_with_a_message(shop):
    order_id = shop.paid_order(shop.session(price=2000))["order_id"]
    headers = {"Authorization": f"Bearer {shop.creator.token}", "Content-Type": "application/json"}
    for raw in ('{"amount": 1e999999}', '{"amount": -1e999999}', '{"amount": NaN}', '{"amount": 1e99}'):
        response = requests.post(f"{shop.url}/api/v1/orders/{order_id}/refund", data=raw, headers=headers, timeout=10)
        assert response.status_code == 422 and "amount" in response.json()["fields"], (raw, response.text)

    browser = shop.dashboard()
    page = browser.get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    form = {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page)[1],
        "idempotency_key": re.search(r'name="idempotency_key" value="([^"]+)"', page)[1],
        "amount": "1e999999",
        "confirm": "yes",
    }
    refused = browser.post(f"{shop.url}/dashboard/orders/{order_id}/refund", data=form, timeout=10)
    assert refused.status_code == 422 and "too large" in refused.text
    assert shop.refunds(order_id) == [] and shop.order(order_id)["status"] == "paid"
