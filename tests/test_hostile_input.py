"""Hostile and odd input, as a security review sent it: each is refused with a 4xx and a message where it enters,
and nothing that is already stored can take a page down. Every test runs on SQLite and PostgreSQL, which is the
stricter of the two (NUL bytes, column lengths)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from tests.conftest import Api, csrf_in, session_payload
from tests.test_emails import Shop
from tests.test_web import csrf_token, new_session_form, signup
from webinar_pay.extensions import db
from webinar_pay.limits import MAX_REMINDERS
from webinar_pay.models import Creator, LiveSession, Order, OutboxMessage, Refund, utcnow

SESSIONS = "/api/v1/sessions"


@pytest.fixture
def creator_api(client, create_creator) -> Api:
    return Api(client, create_creator()[1])


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _refused(status: int, body: dict, *fields: str) -> None:
    assert status == 422, body
    assert body["error"] == "validation_error" and set(fields) <= set(body["fields"]), body
    for field in fields:
        assert body["fields"][field]  # a message a person can act on


# -- dates: bounded where they enter, harmless where they are shown ------------------------------------------------


@pytest.mark.parametrize(
    "starts_at",
    ["9999-12-31T23:30:00Z", "9999-12-31T23:30:00+00:00", "0001-01-01T00:30:00+01:00", "9999-12-31T23:59"],
)
def test_a_start_at_the_edge_of_the_calendar_is_refused(app, creator_api, starts_at):
    status, body = creator_api.post(SESSIONS, session_payload(starts_at=starts_at, timezone="Europe/Paris"))
    _refused(status, body, "starts_at")
    assert _count(app, LiveSession) == 0


def test_a_new_start_lies_between_yesterday_and_five_years_ahead(creator_api):
    now = utcnow().replace(microsecond=0)
    for starts_at, accepted in [
        (now - timedelta(hours=23), True),
        (now - timedelta(days=2), False),
        (now + timedelta(days=4 * 365), True),
        (now + timedelta(days=5 * 365 + 3), False),
    ]:
        status, body = creator_api.post(SESSIONS, session_payload(starts_at=starts_at.isoformat()))
        assert (status == 201) == accepted, (starts_at, body)
        if not accepted:
            assert "five years" in body["fields"]["starts_at"]

    status, created = creator_api.post(SESSIONS, session_payload())
    status, body = creator_api.patch(f"{SESSIONS}/{created['id']}", {"starts_at": "2099-01-01T10:00:00Z"})
    _refused(status, body, "starts_at")
    status, body = creator_api.patch(f"{SESSIONS}/{created['id']}", {**created, "title": "Renamed"})
    assert status == 200 and body["starts_at"] == created["starts_at"]  # sending the same start back is no move


def _log_in(client, email: str = "creator@example.com") -> None:
    form = {"csrf_token": csrf_token(client, "/login"), "email": email, "password": "correct horse battery"}
    assert client.post("/login", data=form).status_code == 302


def test_a_session_stored_at_the_end_of_the_calendar_cannot_take_pages_down(app, client, creator_api):
    """Rows written before starts were bounded: every page that shows one still answers, in UTC."""
    status, created = creator_api.post(SESSIONS, session_payload(timezone="Europe/Paris"))
    creator_api.post(f"{SESSIONS}/{created['id']}/publish")
    with app.app_context():
        session = db.session.get(LiveSession, created["id"])
        session.starts_at = datetime(9999, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January 10000 in Paris
        db.session.commit()

    status, started = Api(client).post(
        f"{SESSIONS}/{created['id']}/checkout", {"name": "Bo", "email": "bo@example.com", "provider": "stripe"}
    )
    assert status == 201, started
    for path in ["/", f"/s/{created['id']}", started["ticket_url"].removeprefix(app.config["BASE_URL"])]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "9999-12-31 23:30 UTC" in response.get_data(as_text=True)
    _log_in(client)
    for path in [
        "/dashboard/",
        f"/dashboard/sessions/{created['id']}",
        f"/dashboard/sessions/{created['id']}/edit",
        f"/dashboard/sessions/{created['id']}/emails/preview/confirmation",
        f"/dashboard/sessions/{created['id']}/emails/preview/confirmation?part=html",
    ]:
        assert client.get(path).status_code == 200, path


# -- reminders and the work a session's change may cost ------------------------------------------------------------


@pytest.mark.parametrize(
    "offsets",
    [list(range(5, 5 + MAX_REMINDERS + 1)), list(range(5, 1005)), list(range(1, 43_201)), [4], [43_201], ["60"]],
    ids=["eleven", "a thousand", "one a minute for a month", "under five minutes", "over thirty days", "text"],
)
def test_a_session_has_at_most_ten_reminders_between_five_minutes_and_thirty_days(app, creator_api, offsets):
    status, body = creator_api.post(SESSIONS, session_payload(reminder_offsets_minutes=offsets))
    _refused(status, body, "reminder_offsets_minutes")
    assert "at most 10 reminders" in body["fields"]["reminder_offsets_minutes"]
    assert _count(app, LiveSession) == 0
    status, body = creator_api.post(SESSIONS, session_payload(reminder_offsets_minutes=[5, 43_200, 5]))
    assert status == 201 and body["reminder_offsets_minutes"] == [43_200, 5]


class _Statements:
    """Counts the SQL statements run while it is open: all of them, and those that touch the outbox."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.count = 0
        self.total = 0

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        self.count += "outbox_messages" in statement
        self.total += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._seen)


def _outbox(shop: Shop, session_id: int, kind: str) -> list[tuple[str, datetime]]:
    """(status, due time) of each attendee's `kind` message."""

    def read():
        query = select(OutboxMessage.status, OutboxMessage.due_at).join(Order).where(Order.session_id == session_id)
        return [tuple(row) for row in db.session.execute(query.where(OutboxMessage.kind == kind))]

    return shop.db(read)


def test_moving_and_cancelling_a_session_cost_the_same_statements_for_any_number_of_attendees(
    live_server, create_creator
):
    shop = Shop(live_server(demo=True), create_creator()[1], provider="sandbox")
    browser = shop.dashboard()
    statements = {}
    for attendees in (1, 4):
        starts = (utcnow() + timedelta(days=5)).replace(second=0, microsecond=0)
        session_id = shop.session(starts_at=starts.isoformat(), reminder_offsets_minutes=[1440, 60, 30])
        for number in range(attendees):
            shop.paid_order(session_id, email=f"a{number}-{session_id}@example.com")
        shop.dispatch(utcnow())  # the confirmations go out: a move then sends an update

        moved = starts + timedelta(days=1)
        with _Statements(shop.app) as move:
            status, body = shop.creator.patch(
                f"{SESSIONS}/{session_id}", {"starts_at": moved.isoformat(), "reminder_offsets_minutes": [1440, 45]}
            )
        assert status == 200, body
        assert _outbox(shop, session_id, "reminder:1440") == [("pending", moved - timedelta(days=1))] * attendees
        assert _outbox(shop, session_id, "reminder:45") == [("pending", moved - timedelta(minutes=45))] * attendees
        assert {status for status, _due in _outbox(shop, session_id, "reminder:30")} == {"cancelled"}
        assert [status for status, _due in _outbox(shop, session_id, "session_moved")] == ["pending"] * attendees

        page = browser.get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
        form = {"csrf_token": csrf_in(page), "confirm": "yes"}
        with _Statements(shop.app) as cancel:
            cancelled = browser.post(f"{shop.url}/dashboard/sessions/{session_id}/cancel", data=form,
                                     allow_redirects=False, timeout=30)  # fmt: skip
        assert cancelled.status_code == 302
        assert [status for status, _due in _outbox(shop, session_id, "cancelled")] == ["pending"] * attendees
        assert {status for status, _due in _outbox(shop, session_id, "reminder:45")} == {"cancelled"}
        statements[attendees] = (move.count, cancel.count, cancel.total)
    assert statements[1] == statements[4], statements


# -- text that no column, page or email header can hold ------------------------------------------------------------


def test_a_bearer_token_with_non_ascii_bytes_is_no_token(client, published_session):
    session_id, owner = published_session()
    status, started = Api(client).post(
        f"{SESSIONS}/{session_id}/checkout", {"name": "Bo", "email": "bo@example.com", "provider": "stripe"}
    )
    for token in ["wp_\xe9t\xe9", f"{started['order_id']}.\xe9\xe9", "\xb2.x", "1.\x80"]:
        for path in [f"/api/v1/orders/{started['order_id']}", SESSIONS]:
            response = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (token, path)
            assert response.get_json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    "field, value",
    [("title", "Water\x00colour"), ("description", "Two hours\x00 of brushes"), ("title", "Two\nlines"),
     ("join_link", "https://meet.example.com/\x00x"), ("timezone", "Europe/Paris\x00")],
)  # fmt: skip
def test_control_characters_in_session_fields_are_refused(app, creator_api, field, value):
    status, body = creator_api.post(SESSIONS, session_payload(**{field: value}))
    _refused(status, body, field)
    assert _count(app, LiveSession) == 0


def test_a_description_keeps_its_line_breaks(creator_api):
    status, body = creator_api.post(SESSIONS, session_payload(description="Bring:\n- brushes\r\n- paper\tand water"))
    assert status == 201 and body["description"] == "Bring:\n- brushes\r\n- paper\tand water"


@pytest.mark.parametrize("field", ["join_link", "replay_url", "youtube_url"])
def test_links_longer_than_their_column_are_refused(app, creator_api, field):
    long_link = "https://meet.example.com/" + "x" * 480  # 505 characters
    platform = {"youtube_url": "youtube"}.get(field, "link")
    status, body = creator_api.post(SESSIONS, session_payload(platform=platform, **{field: long_link}))
    _refused(status, body, field)
    assert "500 characters" in body["fields"][field]
    for bad in ["https://meet.example.com/a b", "https://m\xe9et.example.com/", "https://a.example/%zz", "ftp://a/b"]:
        status, body = creator_api.post(SESSIONS, session_payload(platform=platform, **{field: bad}))
        _refused(status, body, field)
    assert _count(app, LiveSession) == 0


@pytest.mark.parametrize(
    "name, email",
    [("Bo\x00", "bo@example.com"), ("Bo\r\nBcc: all@example.com", "bo@example.com"), ("B" * 121, "bo@example.com"),
     ("Bo", "bo\x00@example.com"), ("Bo", "bo@example.com\r\nBcc: all@example.com"),
     ("Bo", "b" * 250 + "@example.com")],
)  # fmt: skip
def test_the_buyer_s_name_and_email_are_one_clean_line(app, client, published_session, name, email):
    session_id, _owner = published_session()
    status, body = Api(client).post(f"{SESSIONS}/{session_id}/checkout", {"name": name, "email": email})
    assert status == 422 and body["fields"], body
    form = {"csrf_token": csrf_token(client, f"/s/{session_id}"), "name": name, "email": email}
    response = client.post(f"/s/{session_id}/checkout", data=form)
    assert response.status_code == 422 and 'class="field-error"' in response.get_data(as_text=True)
    assert _count(app, Order) == 0


@pytest.mark.parametrize(
    "name, message",
    [("Ada\x00", "control characters"), ("Ada\r\nBcc: all@example.com", "line breaks"), ("A" * 121, "120")],
)
def test_a_creator_s_name_is_one_clean_line_at_sign_up_and_in_the_profile(app, client, name, message):
    form = {"csrf_token": csrf_token(client, "/signup"), "name": name, "email": "ada@example.com",
            "password": "correct horse battery", "timezone": "UTC"}  # fmt: skip
    response = client.post("/signup", data=form)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert _count(app, Creator) == 0

    signup(client)
    form = {"csrf_token": csrf_token(client, "/dashboard/profile"), "name": name, "timezone": "UTC"}
    response = client.post("/dashboard/profile", data=form)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    form.update(name="Ada", reply_to="ada\x00@example.com", logo_url="https://cdn.example.com/" + "x" * 500)
    response = client.post("/dashboard/profile", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "Enter a valid email address" in page and "image" in page
    with app.app_context():
        assert db.session.scalar(select(Creator.name)) == "Ada"


def test_a_log_in_with_a_nul_byte_is_a_wrong_password(client):
    form = {"csrf_token": csrf_token(client, "/login"), "email": "ada\x00@example.com", "password": "x"}
    assert client.post("/login", data=form).status_code == 401


# -- numbers and bodies ------------------------------------------------------------------------------------------


def test_a_price_of_1e999999_is_refused(app, client, creator_api):
    response = client.post(
        SESSIONS,
        data=json.dumps(session_payload()).replace('"price": 2500', '"price": 1e999999'),
        headers={"Authorization": f"Bearer {creator_api.token}", "Content-Type": "application/json"},
    )
    _refused(response.status_code, response.get_json(), "price")

    signup(client, email="form@example.com")
    form = new_session_form(csrf_token=csrf_token(client, "/dashboard/sessions/new"), price="1e999999")
    response = client.post("/dashboard/sessions/new", data=form)
    assert response.status_code == 422 and "too large" in response.get_data(as_text=True)
    assert _count(app, LiveSession) == 0


def test_deeply_nested_json_at_checkout_is_refused(app, client, published_session):
    session_id, _owner = published_session()
    for body in ["[" * 100_000 + "]" * 100_000, '{"name": ' + "[" * 50_000 + "]" * 50_000 + "}"]:
        response = client.post(f"{SESSIONS}/{session_id}/checkout", data=body, content_type="application/json")
        assert response.status_code == 422 and "JSON object" in response.get_json()["message"]
    assert _count(app, Order) == 0


@pytest.mark.parametrize("kind", ["reminder:\xb2", "reminder:\u0661\u0662", "reminder:1234567", "confirmation:5"])
def test_a_preview_of_a_message_that_cannot_exist_is_not_found(client, creator_api, kind):
    _status, created = creator_api.post(SESSIONS, session_payload())
    _log_in(client)
    assert client.get(f"/dashboard/sessions/{created['id']}/emails/preview/{kind}").status_code == 404
    assert client.get(f"/dashboard/sessions/{created['id']}/emails/preview/reminder:1440").status_code == 200


# -- the API says what it does ---------------------------------------------------------------------------------------


def test_a_405_says_which_methods_are_allowed(client):
    response = client.delete(SESSIONS)
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}
    response = client.put("/login")  # an HTML page
    assert response.status_code == 405 and "not allowed" in response.get_data(as_text=True)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


@pytest.mark.parametrize("meeting_id", [{}, [], True, 12.5, "12ab", "\t123456789"])
def test_a_zoom_meeting_id_that_is_not_9_to_12_digits_is_refused_whatever_the_platform(app, creator_api, meeting_id):
    for platform in ("zoom", "link"):
        status, body = creator_api.post(SESSIONS, session_payload(platform=platform, zoom_meeting_id=meeting_id))
        _refused(status, body, "zoom_meeting_id")
    assert _count(app, LiveSession) == 0


def test_a_zoom_meeting_id_may_be_sent_as_a_number(creator_api):
    payload = session_payload(platform="zoom", zoom_meeting_id=81234567890)
    del payload["join_link"]
    status, body = creator_api.post(SESSIONS, payload)
    assert status == 201 and body["zoom_meeting_id"] == "81234567890"


def test_a_checkout_without_provider_pays_with_the_first_one_offered(client, published_session):
    session_id, owner = published_session()
    status, started = Api(client).post(f"{SESSIONS}/{session_id}/checkout", {"name": "Bo", "email": "bo@example.com"})
    assert status == 201
    assert owner.get(f"/api/v1/orders/{started['order_id']}")[1]["provider"] == "stripe"
    status, body = Api(client).post(
        f"{SESSIONS}/{session_id}/checkout", {"name": "Bo", "email": "bo@example.com", "provider": 5}
    )
    _refused(status, body, "provider")


def test_an_idempotency_key_sent_again_with_another_amount_is_refused(live_server, create_creator):
    shop = Shop(live_server(demo=True), create_creator()[1], provider="sandbox")
    order_id = shop.paid_order(shop.session(price=3000))["order_id"]

    client = shop.app.test_client()  # it sends the keys that requests refuses to send ("   ", "cl\xe9")

    def send(amount, key):
        response = client.post(
            f"/api/v1/orders/{order_id}/refund",
            json={"amount": amount},
            headers={"Authorization": f"Bearer {shop.creator.token}", "Idempotency-Key": key},
        )
        return response.status_code, response.get_json()

    status, first = send(1000, "key-1")
    assert status == 201 and first["refund"]["amount"] == 1000
    status, again = send(1000, "key-1")
    assert status == 200 and again["refund"]["id"] == first["refund"]["id"]
    status, body = send(500, "key-1")
    assert status == 422 and body["error"] == "idempotency_key_reused" and "1000" in body["message"]
    status, body = send(500, "k" * 64)  # with the order id in front it is longer than 64: it still fits the column
    assert status == 201 and body["refund"]["amount"] == 500
    status, body = send(500, "k" * 64)
    assert status == 200
    for bad_key in ["k" * 65, "   ", "cl\xe9"]:
        assert send(1, bad_key)[0] == 422
    assert shop.db(lambda: db.session.scalar(select(func.sum(Refund.amount)))) == 1500


# -- the HTML is valid where the review found it was not ---------------------------------------------------------------


def test_forms_write_boolean_attributes_and_times_as_html_allows(client, published_session):
    page = client.get("/signup").get_data(as_text=True)
    assert 'required="True"' not in page and re.search(r'<input id="name"[^>]* required>', page)
    session_id, _owner = published_session()
    page = client.get(f"/s/{session_id}").get_data(as_text=True)
    times = re.findall(r'<time datetime="([^"]+)"', page)
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value) for value in times), times
