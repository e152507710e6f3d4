"""Creators manage their sessions through the API; nobody else can see or touch them."""

from datetime import UTC, date, datetime, timedelta

from tests.conftest import Api, session_payload

NEXT_YEAR = datetime.now(UTC).year + 1


def _last_sunday_of_march(year: int) -> date:
    """The day Europe/Paris moves its clocks from 02:00 to 03:00."""
    day = date(year, 3, 31)
    return day - timedelta(days=(day.weekday() + 1) % 7)


def test_create_read_update_publish(client, create_creator):
    _id, token = create_creator()
    api = Api(client, token)
    starts_at = f"{NEXT_YEAR}-06-01T18:30:00+02:00"
    status, body = api.post("/api/v1/sessions", session_payload(starts_at=starts_at, currency="eur"))
    assert status == 201
    assert body["status"] == "draft"
    assert body["starts_at"] == f"{NEXT_YEAR}-06-01T16:30:00Z"
    assert body["currency"] == "EUR"
    assert body["reminder_offsets_minutes"] == [1440, 60]
    assert body["public_url"] == f"http://127.0.0.1:5000/s/{body['id']}"
    session_id = body["id"]

    status, body = api.patch(f"/api/v1/sessions/{session_id}", {"capacity": 3, "reminder_offsets_minutes": [30, 2880]})
    assert status == 200
    assert (body["capacity"], body["seats_left"], body["seats_taken"]) == (3, 3, 0)
    assert body["reminder_offsets_minutes"] == [2880, 30]
    assert body["title"] == "Watercolour basics"

    assert client.get(f"/s/{session_id}").status_code == 404  # drafts are not public
    status, body = api.post(f"/api/v1/sessions/{session_id}/publish")
    assert (status, body["status"]) == (200, "published")
    assert client.get(f"/s/{session_id}").status_code == 200
    status, body = api.get("/api/v1/sessions")
    assert [s["id"] for s in body["sessions"]] == [session_id]


def test_zero_decimal_currency_and_free_sessions(client, create_creator):
    api = Api(client, create_creator()[1])
    status, body = api.post("/api/v1/sessions", session_payload(price=3000, currency="JPY"))
    assert status == 201
    page = client.get(f"/s/{body['id']}")
    api.post(f"/api/v1/sessions/{body['id']}/publish")
    page = client.get(f"/s/{body['id']}").get_data(as_text=True)
    assert "¥3,000" in page
    status, body = api.post("/api/v1/sessions", session_payload(price=0))
    api.post(f"/api/v1/sessions/{body['id']}/publish")
    assert "Register for free" in client.get(f"/s/{body['id']}").get_data(as_text=True)


def test_validation_errors_name_each_field(client, create_creator):
    api = Api(client, create_creator()[1])
    bad = session_payload(
        title="", timezone="Mars/Base", price=-5, currency="EURO", capacity=0, platform="zoom", zoom_meeting_id="abc"
    )
    status, body = api.post("/api/v1/sessions", bad)
    assert status == 422
    assert body["error"] == "validation_error"
    assert set(body["fields"]) >= {"title", "timezone", "price", "currency", "capacity", "zoom_meeting_id"}
    status, body = api.post("/api/v1/sessions", {"title": "x", "colour": "red"})
    assert status == 422 and "colour" in body["fields"] and "starts_at" in body["fields"]
    status, body = api.get("/api/v1/sessions")
    assert body["sessions"] == []  # nothing was created by the bad requests


def test_not_a_json_object_is_a_clear_error(client, create_creator):
    api = Api(client, create_creator()[1])
    status, body = api.post("/api/v1/sessions", ["a", "list"])
    assert status == 422 and "JSON object" in body["message"]


def test_local_time_and_dst_gap_from_the_form_style_input(client, create_creator):
    api = Api(client, create_creator()[1])
    gap = f"{_last_sunday_of_march(NEXT_YEAR)}T02:30"
    status, body = api.post("/api/v1/sessions", session_payload(starts_at=gap, timezone="Europe/Paris"))
    assert status == 422 and "clocks change" in body["fields"]["starts_at"]
    tokyo = f"{NEXT_YEAR}-01-15T09:00"
    status, body = api.post("/api/v1/sessions", session_payload(starts_at=tokyo, timezone="Asia/Tokyo"))
    assert status == 201 and body["starts_at"] == f"{NEXT_YEAR}-01-15T00:00:00Z"


def test_a_session_in_the_past_cannot_be_published(client, create_creator):
    api = Api(client, create_creator()[1])
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    status, body = api.post("/api/v1/sessions", session_payload(starts_at=past))
    status, body = api.post(f"/api/v1/sessions/{body['id']}/publish")
    assert status == 409 and "past" in body["message"]


def test_capacity_cannot_drop_below_seats_taken(client, published_session):
    session_id, api = published_session(capacity=2)
    status, _body = Api(client).post(
        f"/api/v1/sessions/{session_id}/checkout", {"name": "Bo", "email": "bo@example.com", "provider": "stripe"}
    )
    assert status == 201
    status, body = api.patch(f"/api/v1/sessions/{session_id}", {"capacity": 0})
    assert status == 422
    status, body = api.patch(f"/api/v1/sessions/{session_id}", {"capacity": 1})
    assert status == 200 and body["seats_left"] == 0


def test_other_creators_cannot_read_or_change_your_sessions_and_orders(client, create_creator, published_session):
    session_id, owner = published_session()
    status, checkout = Api(client).post(
        f"/api/v1/sessions/{session_id}/checkout", {"name": "Bo", "email": "bo@example.com", "provider": "stripe"}
    )
    intruder = Api(client, create_creator(email="mallory@example.com")[1])
    for method, path, payload in [
        ("GET", f"/api/v1/sessions/{session_id}", None),
        ("PATCH", f"/api/v1/sessions/{session_id}", {"price": 1}),
        ("POST", f"/api/v1/sessions/{session_id}/publish", None),
        ("GET", f"/api/v1/sessions/{session_id}/orders", None),
        ("GET", f"/api/v1/orders/{checkout['order_id']}", None),
    ]:
        status, body = intruder.request(method, path, json=payload)
        assert status == 404, (method, path, body)
    assert intruder.get("/api/v1/sessions")[1]["sessions"] == []
    status, body = owner.get(f"/api/v1/sessions/{session_id}")
    assert body["price"] == 2500


def test_requests_without_a_valid_token_are_refused(client, published_session):
    session_id, _api = published_session()
    response = client.get(f"/api/v1/sessions/{session_id}")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"] == "unauthorized"
    status, _ = Api(client, "wp_not-a-real-token").get(f"/api/v1/sessions/{session_id}")
    assert status == 401


def test_an_order_can_be_read_with_its_own_access_token_only(client, published_session):
    session_id, owner = published_session()
    buyer = Api(client)
    _s, first = buyer.post(
        f"/api/v1/sessions/{session_id}/checkout", {"name": "A", "email": "a@example.com", "provider": "stripe"}
    )
    _s, second = buyer.post(
        f"/api/v1/sessions/{session_id}/checkout", {"name": "B", "email": "b@example.com", "provider": "stripe"}
    )
    status, body = buyer.get(f"/api/v1/orders/{first['order_id']}", token=first["access_token"])
    assert status == 200 and body["email"] == "a@example.com" and body["status"] == "pending"
    status, body = buyer.get(f"/api/v1/orders/{second['order_id']}", token=first["access_token"])
    assert status == 401
    status, body = owner.get(f"/api/v1/orders/{second['order_id']}")
    assert status == 200 and body["name"] == "B"


def test_malformed_values_are_validation_errors_not_crashes(client, create_creator):
    api = Api(client, create_creator()[1])
    bad = session_payload(capacity=1e400, title=["a"], platform=["zoom"], reminder_offsets_minutes="soon")
    status, body = api.post("/api/v1/sessions", bad)
    assert status == 422
    assert set(body["fields"]) == {"capacity", "title", "platform", "reminder_offsets_minutes"}
    status, body = api.post("/api/v1/sessions", session_payload(platform="zoom", zoom_meeting_id="²²²²²²²²²"))
    assert status == 422 and "zoom_meeting_id" in body["fields"]
    status, body = api.get("/api/v1/sessions/99999999999999999999")
    assert status == 404 and body["error"] == "not_found"
    response = client.delete("/api/v1/sessions")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"


def test_checkout_with_non_text_buyer_fields(client, published_session):
    session_id, _api = published_session()
    status, body = Api(client).post(f"/api/v1/sessions/{session_id}/checkout", {"name": 5, "email": ["x"]})
    assert status == 422 and set(body["fields"]) == {"name", "email"}


def test_a_session_read_from_the_api_can_be_sent_back_as_a_patch(client, create_creator):
    api = Api(client, create_creator()[1])
    _status, created = api.post("/api/v1/sessions", session_payload(platform="zoom", zoom_meeting_id="812 3456 7890"))
    assert created["zoom_meeting_id"] == "81234567890" and created["zoom_kind"] == "meeting"
    status, body = api.patch(f"/api/v1/sessions/{created['id']}", {**created, "title": "Renamed"})
    assert status == 200 and body["title"] == "Renamed"
    status, body = api.patch(f"/api/v1/sessions/{created['id']}", {"platform": "zoom", "zoom_kind": "webinar"})
    assert status == 200 and (body["zoom_meeting_id"], body["zoom_kind"]) == ("81234567890", "webinar")
    status, body = api.patch(f"/api/v1/sessions/{created['id']}", {"platform": "youtube"})
    assert status == 422 and "youtube_url" in body["fields"]
    status, body = api.patch(
        f"/api/v1/sessions/{created['id']}", {"platform": "youtube", "youtube_url": "https://youtu.be/abc"}
    )
    assert status == 200 and body["zoom_meeting_id"] is None and body["youtube_url"] == "https://youtu.be/abc"
