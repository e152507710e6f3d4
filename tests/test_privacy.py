"""Attendees' data over HTTP: the export (dashboard, API, emailed to the attendee), erasure, the retention job,
consents at checkout and the deletion of a creator's account."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from tests.conftest import PASSWORD, Api, LiveShop, csrf_in, stripe_session_id
from tests.zoom_setup import link_creator
from webinar_pay.extensions import db
from webinar_pay.models import (
    Creator,
    Enrollment,
    LiveSession,
    Order,
    OrderConsent,
    OutboxMessage,
    ProviderEvent,
    utcnow,
)
from webinar_pay.scheduler import tick
from webinar_pay.services.enrollment import enroll_due
from webinar_pay.services.privacy import erase_expired_attendees

PLACEHOLDER_EMAIL = "erased@erased.invalid"


class Shop(LiveShop):
    def export(self, order_id: int, token: str | None = None) -> tuple[int, dict]:
        return self.creator.get(f"/api/v1/orders/{order_id}/export", token=token)

    def erase(self, order_id: int, token: str | None = None) -> tuple[int, dict]:
        return self.creator.post(f"/api/v1/orders/{order_id}/erase", token=token)

    def move_to_past(self, session_id: int, days: float, minutes: int = 0) -> None:
        """Make the session start `days` (and `minutes`) ago, as if it had been sold then."""
        starts = utcnow() - timedelta(days=days, minutes=minutes)
        self.db(
            lambda: db.session.execute(update(LiveSession).where(LiveSession.id == session_id).values(starts_at=starts))
        )

    def order_row(self, order_id: int) -> dict:
        def read():
            order = db.session.get(Order, order_id)
            return {"name": order.name, "email": order.email, "erased_at": order.erased_at, "status": order.status}

        return self.db(read)


@pytest.fixture
def shop(live_server, create_creator, fake_stripe, smtp) -> Shop:
    return Shop(live_server(**smtp.config), create_creator()[1], stripe=fake_stripe)


def _dumped(value) -> str:
    return json.dumps(value).lower()


# -- export ------------------------------------------------------------------------------------------------------------


def test_the_creator_exports_everything_held_about_an_attendee(shop, create_creator):
    session_id = shop.session()
    status, checkout = shop.buyer.post(
        f"/api/v1/sessions/{session_id}/checkout",
        {"name": "Bo Buyer", "email": "bo@example.com", "provider": "stripe", "consents": ["creator_news"]},
    )
    assert status == 201, checkout
    assert shop.webhook(shop.stripe.complete_session(stripe_session_id(checkout))) == "paid"
    assert shop.dispatch().sent == 1  # the confirmation
    order_id = checkout["order_id"]
    other_session = shop.session(title="Oils")
    second = shop.paid_order(other_session)  # the same person again

    status, export = shop.export(order_id)
    assert status == 200, export
    assert export["attendee"] == {"name": "Bo Buyer", "email": "bo@example.com", "erased_at": None}
    first, again = export["orders"]
    assert (first["id"], again["id"]) == (order_id, second["order_id"])
    assert first["status"] == "paid" and first["amount"] == 2500 and first["payment_ref"]
    [consent] = first["consents"]
    assert consent["purpose"] == "creator_news" and "Ada Teacher" in consent["wording"]
    assert consent["source"] == f"API /api/v1/sessions/{session_id}/checkout" and consent["given_at"].endswith("Z")
    assert again["consents"] == []
    confirmation = next(email for email in first["emails"] if email["kind"] == "confirmation")
    assert confirmation["status"] == "sent" and confirmation["to"] == "bo@example.com"
    assert "Bo Buyer" in confirmation["text"] and confirmation["subject"].startswith("You are in")
    assert first["enrollment"]["status"] == "enrolled" and first["enrollment"]["join_url"]
    assert [entry["to_status"] for entry in first["log"]] == ["pending", "paid"]
    assert first["provider_events"] and first["provider_events"][0]["provider"] == "stripe"
    assert "bo@example.com" in _dumped(first["provider_events"])  # Stripe's customer details, as received

    browser = shop.dashboard()
    download = browser.get(f"{shop.url}/dashboard/orders/{order_id}/export", timeout=10)
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    downloaded = download.json()
    assert {**downloaded, "exported_at": None} == {**export, "exported_at": None}
    page = browser.get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    assert "Download everything held about this attendee" in page and "news of future sessions" in page
    assert page.count('id="attendee-data"') == 1 and "<" not in re.search(r"<title>(.*?)</title>", page, re.S)[1]

    intruder = create_creator(email="mallory@example.com")[1]
    assert shop.export(order_id, token=intruder)[0] == 404
    assert shop.export(order_id, token="wp_nope")[0] == 401
    mallory = shop.dashboard("mallory@example.com")
    assert mallory.get(f"{shop.url}/dashboard/orders/{order_id}/export", timeout=10).status_code == 404


def test_an_attendee_gets_their_data_by_email_once_a_day(shop, smtp):
    checkout = shop.paid_order(shop.session())
    browser = requests.Session()
    ticket = browser.get(checkout["ticket_url"], timeout=10)
    assert "Email me my data" in ticket.text
    asked = browser.post(f"{checkout['ticket_url']}/my-data", data={"csrf_token": csrf_in(ticket.text)}, timeout=10)
    assert asked.status_code == 200 and "on its way to bo@example.com" in asked.text
    assert shop.emails(checkout["order_id"])["data_export"] == "pending"
    shop.dispatch()
    [received] = [item for item in smtp.to("bo@example.com") if item.subject.startswith("Your data")]
    attached = received.part("application/json")
    export = json.loads(attached if isinstance(attached, str) else attached.decode())
    assert export["attendee"]["email"] == "bo@example.com" and export["orders"][0]["id"] == checkout["order_id"]
    assert "attached file" in received.text

    again = browser.post(f"{checkout['ticket_url']}/my-data", data={"csrf_token": csrf_in(ticket.text)}, timeout=10)
    assert again.status_code == 429 and "less than a day ago" in again.text
    no_csrf = browser.post(f"{checkout['ticket_url']}/my-data", timeout=10)
    assert no_csrf.status_code == 400
    forged = checkout["ticket_url"][:-4] + "AAAA"
    assert browser.post(f"{forged}/my-data", data={"csrf_token": csrf_in(ticket.text)}, timeout=10).status_code == 404
    shop.dispatch()
    assert len([item for item in smtp.to("bo@example.com") if item.subject.startswith("Your data")]) == 1

    yesterday = utcnow() - timedelta(hours=25)
    shop.db(lambda: db.session.execute(
        update(OutboxMessage).where(OutboxMessage.kind == "data_export").values(sent_at=yesterday)
    ))  # fmt: skip
    later = browser.post(f"{checkout['ticket_url']}/my-data", data={"csrf_token": csrf_in(ticket.text)}, timeout=10)
    assert later.status_code == 200 and shop.emails(checkout["order_id"])["data_export"] == "pending"


# -- erasure -----------------------------------------------------------------------------------------------------------


def test_erasure_through_the_api_keeps_the_accounts_and_revokes_everything(shop, create_creator):
    session_id = shop.session()
    checkout = shop.paid_order(session_id)
    order_id = checkout["order_id"]
    assert shop.dispatch().sent == 1
    second = shop.paid_order(shop.session(title="Oils"))
    join = shop.join_url(order_id)
    assert "reminder:60" in shop.emails(order_id)
    before = shop.order(order_id)

    intruder = create_creator(email="mallory@example.com")[1]
    assert shop.erase(order_id, token=intruder)[0] == 404
    assert shop.order_row(order_id)["erased_at"] is None

    status, erased = shop.erase(order_id)
    assert status == 200, erased
    assert sorted(erased["erased_order_ids"]) == [order_id, second["order_id"]]
    order = erased["order"]
    assert (order["name"], order["email"]) == ("[erased]", PLACEHOLDER_EMAIL) and order["erased_at"]
    kept = ("status", "amount", "currency", "provider", "paid_at")
    assert {key: order[key] for key in kept} == {key: before[key] for key in kept}
    assert order["enrollment"] == {"status": "cancelled", "join_url": None}

    assert {kind: status for kind, status in shop.emails(order_id).items() if kind != "confirmation"} == {
        "reminder:1440": "cancelled", "reminder:60": "cancelled", "thank_you": "cancelled"
    }  # fmt: skip
    assert shop.dispatch(utcnow() + timedelta(days=30)).sent == 0

    gone = requests.get(checkout["ticket_url"], timeout=10)
    assert gone.status_code == 410 and "personal data was erased" in gone.text
    assert requests.get(join, allow_redirects=False, timeout=10).status_code == 410
    assert requests.post(f"{checkout['ticket_url']}/cancel", timeout=10).status_code in (400, 410)
    status, body = Api(shop.url, checkout["access_token"]).get(f"/api/v1/orders/{order_id}")
    assert status == 410 and body["error"] == "erased"

    status, export = shop.export(order_id)
    assert status == 200 and export["attendee"]["email"] == PLACEHOLDER_EMAIL
    [exported] = export["orders"]
    assert exported["payment_ref"] == before_payment_ref(shop, order_id) and exported["amount"] == 2500
    assert "bo@example.com" not in _dumped(export) and "bo buyer" not in _dumped(export)
    assert exported["emails"][0]["to"] == PLACEHOLDER_EMAIL and exported["emails"][0]["text"] == "[erased]"
    assert exported["log"][-1]["note"].startswith("personal data erased")
    payloads = shop.db(lambda: [e.payload for e in db.session.scalars(select(ProviderEvent))])
    assert payloads and not any("bo@example.com" in payload.lower() for payload in payloads)

    status, again = shop.erase(order_id)
    assert status == 200 and again["erased_order_ids"] == [] and again["order"]["email"] == PLACEHOLDER_EMAIL
    page = shop.dashboard().get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    assert "personal data was erased" in page and "Kept for your accounts" in page and "erase-form" not in page


def before_payment_ref(shop: Shop, order_id: int) -> str:
    return shop.db(lambda: db.session.get(Order, order_id).payment_ref)


def test_the_dashboard_asks_before_erasing_and_says_what_is_kept(shop):
    checkout = shop.paid_order(shop.session())
    order_id = checkout["order_id"]
    browser = shop.dashboard()
    page = browser.get(f"{shop.url}/dashboard/orders/{order_id}", timeout=10).text
    assert "Kept for your accounts: amounts, dates, statuses" in page and "cannot be undone" in page
    url = f"{shop.url}/dashboard/orders/{order_id}/erase"
    unconfirmed = browser.post(url, data={"csrf_token": csrf_in(page)}, timeout=10)
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    assert shop.order_row(order_id)["erased_at"] is None
    assert browser.post(url, data={"confirm": "yes"}, timeout=10).status_code == 400  # no CSRF token
    done = browser.post(url, data={"csrf_token": csrf_in(page), "confirm": "yes"}, timeout=10)
    assert done.status_code == 200 and "personal data was erased (1 order)" in done.text
    assert shop.order_row(order_id)["name"] == "[erased]"


def test_erasing_a_zoom_attendee_cancels_the_registrant_by_its_id_alone(
    live_server, create_creator, fake_stripe, fake_zoom
):
    settings = {**fake_zoom.config(), "ZOOM_RETRY_BACKOFF_SECONDS": 0, "ZOOM_MAX_RETRIES": 1}
    shop = Shop(live_server(**settings), create_creator()[1], stripe=fake_stripe)
    link_creator(shop.app, fake_zoom)
    meeting_id = fake_zoom.add_meeting()
    checkout = shop.paid_order(shop.session(platform="zoom", zoom_meeting_id=meeting_id, join_link=None))
    assert shop.db(enroll_due) == 1
    [registrant] = fake_zoom.registrants_of(meeting_id)
    assert registrant["status"] == "approved" and registrant["email"] == "bo@example.com"

    def enrollment() -> tuple:
        row = db.session.scalar(select(Enrollment).where(Enrollment.order_id == checkout["order_id"]))
        return row.status, row.join_url, row.registrant_id

    assert shop.erase(checkout["order_id"])[0] == 200
    assert shop.db(enrollment) == ("cancelled", None, registrant["id"])  # kept until Zoom has cancelled it
    assert shop.db(enroll_due) == 0
    [registrant] = fake_zoom.registrants_of(meeting_id)
    assert registrant["status"] == "cancelled"
    [cancel] = [call.body for call in fake_zoom.calls("PUT", "/registrants/status") if call.body["action"] == "cancel"]
    assert cancel == {"action": "cancel", "registrants": [{"id": registrant["id"]}]}
    assert shop.db(enrollment) == ("cancelled", None, None)


def test_an_attendee_in_the_middle_of_a_checkout_is_not_erased(shop):
    status, checkout = shop.checkout(shop.session())
    assert status == 201 and checkout["status"] == "pending"
    status, body = shop.erase(checkout["order_id"])
    assert status == 409 and body["error"] == "conflict"
    assert shop.order_row(checkout["order_id"])["email"] == "bo@example.com"


# -- retention ---------------------------------------------------------------------------------------------------------


def test_retention_erases_the_attendees_of_sessions_ended_long_ago_in_batches(shop):
    old, recent, edge = shop.session(title="Old"), shop.session(title="Recent"), shop.session(title="Edge")
    old_orders = [shop.paid_order(old, email=f"old{n}@example.com")["order_id"] for n in range(3)]
    recent_order = shop.paid_order(recent, email="new@example.com")["order_id"]
    edge_order = shop.paid_order(edge, email="edge@example.com")["order_id"]
    status, pending = shop.checkout(old, email="late@example.com")
    assert status == 201
    shop.move_to_past(old, days=800)
    shop.move_to_past(recent, days=30)
    shop.move_to_past(edge, days=730, minutes=60)  # 90 minutes long: it ended 30 minutes short of 730 days ago

    page = shop.dashboard().get(f"{shop.url}/dashboard/sessions/{recent}", timeout=10).text
    assert "erased automatically on" in page and "730 days after the session" in page

    now = utcnow()
    assert shop.db(lambda: erase_expired_attendees(now=now, limit=2)) == 2
    assert shop.db(lambda: erase_expired_attendees(now=now, limit=2)) == 1
    assert shop.db(lambda: erase_expired_attendees(now=now)) == 0
    for order_id in old_orders:
        row = shop.order_row(order_id)
        assert row["name"] == "[erased]" and row["status"] == "paid"
        assert shop.order(order_id)["erased_at"]
    assert shop.order_row(recent_order)["email"] == "new@example.com"
    assert shop.order_row(edge_order)["email"] == "edge@example.com"
    assert shop.order_row(pending["order_id"])["email"] == "late@example.com"  # its payment may still come
    log = shop.export(old_orders[0])[1]["orders"][0]["log"]
    assert log[-1]["actor"].startswith("retention")

    assert shop.db(lambda: erase_expired_attendees(now=now + timedelta(minutes=31))) == 1
    assert shop.order_row(edge_order)["name"] == "[erased]"

    shop.move_to_past(recent, days=731)
    with shop.app.app_context():
        assert tick()["erase_expired_attendees"] == 1


def test_retention_can_be_turned_off(live_server, create_creator, fake_stripe):
    shop = Shop(live_server(ATTENDEE_RETENTION_DAYS=0), create_creator()[1], stripe=fake_stripe)
    session_id = shop.session()
    order_id = shop.paid_order(session_id)["order_id"]
    shop.move_to_past(session_id, days=5000)
    assert shop.db(erase_expired_attendees) == 0 and shop.order_row(order_id)["erased_at"] is None
    page = shop.dashboard().get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    assert "automatic erasure is off" in page


# -- consents ----------------------------------------------------------------------------------------------------------


def _consents(shop: Shop, order_id: int) -> list[tuple[str, str]]:
    rows = select(OrderConsent.purpose, OrderConsent.source).where(OrderConsent.order_id == order_id)
    return shop.db(lambda: [tuple(row) for row in db.session.execute(rows)])


def test_consents_are_asked_with_unticked_boxes_and_recorded_only_when_ticked(shop):
    session_id = shop.session(price=0)
    browser = requests.Session()
    sales = browser.get(f"{shop.url}/s/{session_id}", timeout=10).text
    assert 'name="consents" value="checkout_recovery"' in sales and 'value="creator_news"' in sales
    assert "checked" not in sales.split('id="consents"')[1].split("</fieldset>")[0]

    form = {"csrf_token": csrf_in(sales), "name": "Cy", "email": "cy@example.com"}
    browser.post(f"{shop.url}/s/{session_id}/checkout", data=form, timeout=10)
    form = {**form, "email": "di@example.com", "consents": ["creator_news"]}
    browser.post(f"{shop.url}/s/{session_id}/checkout", data=form, timeout=10)
    orders = {o["email"]: o["id"] for o in shop.creator.get(f"/api/v1/sessions/{session_id}/orders")[1]["orders"]}
    assert _consents(shop, orders["cy@example.com"]) == []
    assert shop.export(orders["cy@example.com"])[1]["orders"][0]["consents"] == []
    assert shop.emails(orders["cy@example.com"]).keys() == shop.emails(orders["di@example.com"]).keys()
    assert _consents(shop, orders["di@example.com"]) == [("creator_news", f"/s/{session_id}")]
    page = shop.dashboard().get(f"{shop.url}/dashboard/orders/{orders['di@example.com']}", timeout=10).text
    assert "Agreed to" in page and "Email me news of future sessions by Ada Teacher" in page

    bad = {"csrf_token": csrf_in(sales), "name": "Ed", "email": "ed@example.com", "consents": "spam_me"}
    refused = browser.post(f"{shop.url}/s/{session_id}/checkout", data=bad, timeout=10)
    assert refused.status_code == 422 and "Choose among" in refused.text


@pytest.mark.parametrize(
    "consents, accepted",
    [
        (None, True),
        ([], True),
        (["checkout_recovery", "creator_news"], True),
        (["checkout_recovery", "checkout_recovery"], True),
        (["newsletter"], False),
        ("creator_news", False),
        (["checkout_recovery", "creator_news", "creator_news"], False),
        ([{"purpose": "creator_news"}], False),
    ],
)
def test_the_api_checkout_reads_consents_strictly(client, published_session, consents, accepted):
    session_id, _api = published_session(price=0)
    body = {"name": "Bo", "email": "bo@example.com", "consents": consents}
    status, answer = Api(client).post(f"/api/v1/sessions/{session_id}/checkout", body)
    if accepted:
        assert status == 201, answer
    else:
        assert status == 422 and set(answer["fields"]) == {"consents"}


# -- the creator's account ---------------------------------------------------------------------------------------------


def test_an_account_with_sessions_still_to_come_cannot_be_deleted(shop):
    session_id = shop.session(title="Next week")
    shop.paid_order(session_id)
    browser = shop.dashboard()
    page = browser.get(f"{shop.url}/account/delete", timeout=10)
    assert page.status_code == 200 and "cannot be deleted yet" in page.text and "Next week" in page.text
    form = {"csrf_token": csrf_in(browser.get(f"{shop.url}/dashboard/profile", timeout=10).text),
            "password": PASSWORD, "confirm": "yes"}  # fmt: skip
    refused = browser.post(f"{shop.url}/account/delete", data=form, timeout=10)
    assert refused.status_code == 409 and "“Next week”" in refused.text
    assert shop.creator.get("/api/v1/sessions")[0] == 200


def test_deleting_an_account_erases_its_attendees_and_logs_it_out(shop):
    past, draft = shop.session(title="Done"), shop.creator.post("/api/v1/sessions", {
        **{"title": "Someday", "starts_at": (utcnow() + timedelta(days=9)).isoformat(), "timezone": "UTC"},
        **{"duration_minutes": 60, "price": 0, "currency": "EUR", "capacity": 5, "platform": "link"},
        "join_link": "https://meet.example.com/x",
    })[1]["id"]  # fmt: skip
    order_id = shop.paid_order(past)["order_id"]
    shop.move_to_past(past, days=2)
    browser = shop.dashboard()
    account = browser.get(f"{shop.url}/account", timeout=10).text
    assert 'id="delete-account"' in account and 'href="/account/delete"' in account
    page = browser.get(f"{shop.url}/account/delete", timeout=10).text
    assert "cannot be deleted yet" not in page

    url = f"{shop.url}/account/delete"
    wrong = browser.post(url, data={"csrf_token": csrf_in(page), "password": "not it", "confirm": "yes"}, timeout=10)
    assert wrong.status_code == 422 and "Wrong password" in wrong.text
    unticked = browser.post(f"{shop.url}/account/delete", data={"csrf_token": csrf_in(page), "password": PASSWORD},
                            timeout=10)  # fmt: skip
    assert unticked.status_code == 422
    assert shop.order_row(order_id)["erased_at"] is None

    done = browser.post(url, data={"csrf_token": csrf_in(page), "password": PASSWORD, "confirm": "yes"}, timeout=10)
    assert done.status_code == 200 and "Your account was deleted" in done.text
    row = shop.order_row(order_id)
    assert row["name"] == "[erased]" and row["status"] == "paid"
    assert browser.get(f"{shop.url}/dashboard/", allow_redirects=False, timeout=10).status_code == 302
    assert shop.creator.get("/api/v1/sessions")[0] == 401
    login = requests.Session()
    form = {"csrf_token": csrf_in(login.get(f"{shop.url}/login", timeout=10).text), "email": "creator@example.com",
            "password": PASSWORD}  # fmt: skip
    assert login.post(f"{shop.url}/login", data=form, timeout=10).status_code == 401

    def creator_and_sessions():
        creator = db.session.scalar(select(Creator))
        statuses = {s.id: s.status for s in db.session.scalars(select(LiveSession))}
        return creator.email, creator.name, creator.deleted_at is not None, statuses

    email, name, deleted, statuses = shop.db(creator_and_sessions)
    assert email.endswith("@erased.invalid") and name == "Deleted account" and deleted
    assert statuses == {past: "published", draft: "cancelled"}
