"""Enrolment end to end over HTTP: our app, the fake Stripe and the fake Zoom on 127.0.0.1, the real clients."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from tests.conftest import Api, LiveShop, at_once, join_url, session_payload, stripe_session_id
from tests.fakes.fake_zoom import Reply
from tests.zoom_setup import link_creator
from webinar_pay.extensions import db
from webinar_pay.models import Enrollment, LiveSession, Order, OrderStatus, utcnow
from webinar_pay.services.enrollment import cancel_enrollment, enroll_due
from webinar_pay.services.state import transition


class Shop(LiveShop):
    def __init__(self, server, token: str, fake_stripe, fake_zoom):
        super().__init__(server, token, stripe=fake_stripe)
        self.zoom = fake_zoom

    def session(self, **overrides) -> int:
        """A Zoom session on a meeting of the fake Zoom, unless told otherwise."""
        if overrides.get("platform", "zoom") == "zoom":
            overrides.setdefault("zoom_meeting_id", self.zoom.add_meeting(overrides.get("zoom_kind", "meeting")))
            overrides = {"platform": "zoom", "join_link": None, **overrides}
        return super().session(**overrides)

    def buy(self, session_id: int, email: str = "bo@example.com", name: str = "Bo Buyer") -> dict:
        status, checkout = self.checkout(session_id, email, name)
        assert status == 201, checkout
        checkout["event"] = self.stripe.complete_session(stripe_session_id(checkout))
        assert self.webhook(checkout["event"]) == "paid"
        return checkout

    def tick(self, later: timedelta = timedelta(0)) -> int:
        return self.db(lambda: enroll_due(now=utcnow() + later))

    def enrollment(self, order_id: int) -> dict:
        def read():
            row = db.session.scalar(select(Enrollment).where(Enrollment.order_id == order_id))
            fields = ("status", "join_url", "registrant_id", "attempts", "last_error", "next_attempt_at", "attended")
            return {name: getattr(row, name) for name in fields}

        return self.db(read)

    def order_status(self, order_id: int) -> str:
        return self.creator.get(f"/api/v1/orders/{order_id}")[1]["status"]

    def refund(self, order_id: int) -> None:
        """What the refund service does: the order is refunded and the enrolment taken back."""

        def refund():
            order = db.session.get(Order, order_id)
            transition(order, OrderStatus.REFUNDED, actor="creator", note="refund")
            cancel_enrollment(order)

        self.db(refund)

    def join(self, checkout: dict) -> requests.Response:
        return requests.get(self.join_url(checkout["order_id"]), allow_redirects=False, timeout=10)


@pytest.fixture
def zoom_settings(fake_zoom, smtp) -> dict:
    return {
        **fake_zoom.config(),
        **smtp.config,
        "ZOOM_RETRY_BACKOFF_SECONDS": 0,
        "ZOOM_MAX_RETRIES": 1,
        "ZOOM_MAX_RETRY_SLEEP_SECONDS": 0,
        "ENROLLMENT_MAX_ATTEMPTS": 3,
    }


@pytest.fixture
def shop(live_server, create_creator, fake_stripe, fake_zoom, zoom_settings) -> Shop:
    shop = Shop(live_server(**zoom_settings), create_creator()[1], fake_stripe, fake_zoom)
    link_creator(shop.app, fake_zoom)
    return shop


def registrant_posts(fake_zoom) -> int:
    return len(fake_zoom.calls("POST", "/registrants"))


def test_paid_attendee_gets_one_registrant_and_a_personal_link(shop, fake_zoom):
    session_id = shop.session()
    meeting_id = shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["zoom_meeting_id"]
    checkout = shop.buy(session_id)
    assert shop.enrollment(checkout["order_id"])["status"] == "pending"
    early = shop.join(checkout)
    assert early.status_code == 403 and "being prepared" in early.text
    assert registrant_posts(fake_zoom) == 0  # the webhook request never talks to Zoom

    assert shop.tick() == 1
    [registrant] = fake_zoom.registrants_of(meeting_id)
    enrollment = shop.enrollment(checkout["order_id"])
    assert (enrollment["status"], enrollment["registrant_id"]) == ("enrolled", registrant["id"])
    assert enrollment["join_url"] == registrant["join_url"] and registrant["status"] == "approved"
    assert registrant["email"] == "bo@example.com" and registrant["first_name"] == "Bo"
    joined = shop.join(checkout)
    assert (joined.status_code, joined.headers["Location"]) == (303, registrant["join_url"])
    assert requests.get(joined.headers["Location"], timeout=10).status_code == 200
    assert "Join the session" in requests.get(checkout["ticket_url"], timeout=10).text

    assert shop.webhook(checkout["event"]) == "duplicate"
    assert shop.tick() == 0
    assert registrant_posts(fake_zoom) == 1 and len(fake_zoom.registrants_of(meeting_id)) == 1


def test_webinar_enrolment(shop, fake_zoom):
    session_id = shop.session(zoom_kind="webinar")
    webinar_id = shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["zoom_meeting_id"]
    checkout = shop.buy(session_id)
    shop.tick()
    [registrant] = fake_zoom.registrants_of(webinar_id, "webinar")
    assert shop.join(checkout).headers["Location"] == registrant["join_url"]


def test_zoom_down_for_a_while_then_enrolled_and_payment_untouched(shop, fake_zoom):
    checkout = shop.buy(shop.session())
    fake_zoom.down = True
    assert shop.tick() == 0
    enrollment = shop.enrollment(checkout["order_id"])
    assert enrollment["status"] == "pending" and enrollment["attempts"] == 1 and "503" in enrollment["last_error"]
    assert enrollment["next_attempt_at"] > utcnow() + timedelta(seconds=30)  # backs off
    assert shop.tick() == 0 and shop.enrollment(checkout["order_id"])["attempts"] == 1  # not due yet
    assert shop.tick(timedelta(minutes=2)) == 0
    assert shop.enrollment(checkout["order_id"])["attempts"] == 2
    assert shop.order_status(checkout["order_id"]) == "paid"

    fake_zoom.down = False
    assert shop.tick(timedelta(minutes=10)) == 1
    assert shop.enrollment(checkout["order_id"])["status"] == "enrolled"
    assert shop.order_status(checkout["order_id"]) == "paid"
    assert shop.join(checkout).status_code == 303


def test_rate_limit_moves_the_next_attempt_after_retry_after(shop, fake_zoom):
    checkout = shop.buy(shop.session())
    fake_zoom.fail_next.append(Reply(429, {"code": 429, "message": "Too many requests"}, {"Retry-After": "600"}))
    shop.tick()
    enrollment = shop.enrollment(checkout["order_id"])
    assert enrollment["status"] == "pending" and enrollment["next_attempt_at"] >= utcnow() + timedelta(seconds=590)
    assert shop.tick(timedelta(minutes=5)) == 0
    assert shop.tick(timedelta(minutes=11)) == 1


def test_last_attempt_fails_alerts_the_creator_and_retry_heals(shop, fake_zoom, smtp):
    session_id = shop.session()
    checkout = shop.buy(session_id)
    fake_zoom.down = True
    for hours in range(3):
        shop.tick(timedelta(hours=hours * 2))
    enrollment = shop.enrollment(checkout["order_id"])
    assert (enrollment["status"], enrollment["attempts"]) == ("failed", 3)
    [alert] = smtp.to("creator@example.com")
    assert "Action needed" in alert.subject and "bo@example.com" in alert.text and "503" in alert.text
    shop.tick(timedelta(hours=7))
    assert len(smtp.to("creator@example.com")) == 1  # one alert, not one per tick
    assert shop.order_status(checkout["order_id"]) == "paid"

    web = requests.Session()
    login = web.get(shop.url + "/login", timeout=10)
    csrf = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    web.post(shop.url + "/login", data={"email": "creator@example.com", "password": "correct horse battery",
                                        "csrf_token": csrf}, timeout=10)  # fmt: skip
    page = web.get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    assert 'id="enrollment-warning"' in page and "could not be enrolled" in page and "503" in page
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    fake_zoom.down = False
    retried = web.post(f"{shop.url}/dashboard/sessions/{session_id}/orders/{checkout['order_id']}/retry-enrollment",
                       data={"csrf_token": csrf}, timeout=10)  # fmt: skip
    assert retried.status_code == 200 and "will be tried again" in retried.text
    assert shop.tick() == 1
    page = web.get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    assert 'id="enrollment-warning"' not in page and "join link" in page


def test_registration_turned_off_in_zoom_fails_at_once_with_what_to_change(shop, fake_zoom, smtp):
    session_id = shop.session()
    meeting_id = shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["zoom_meeting_id"]
    fake_zoom.meetings[("meetings", meeting_id)]["settings"]["approval_type"] = 2
    checkout = shop.buy(session_id)
    shop.tick()
    enrollment = shop.enrollment(checkout["order_id"])
    assert (enrollment["status"], enrollment["attempts"]) == ("failed", 1)
    assert "Registration to Required" in enrollment["last_error"]
    assert "Registration to Required" in smtp.to("creator@example.com")[0].text


def test_refund_cancels_the_registrant_and_revokes_the_link(shop, fake_zoom):
    session_id = shop.session()
    meeting_id = shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["zoom_meeting_id"]
    checkout = shop.buy(session_id)
    shop.tick()
    zoom_link = shop.join(checkout).headers["Location"]
    shop.refund(checkout["order_id"])
    revoked = shop.join(checkout)
    assert revoked.status_code == 403 and "refunded" in revoked.text
    shop.tick()
    [registrant] = fake_zoom.registrants_of(meeting_id)
    assert registrant["status"] == "cancelled"
    assert requests.get(zoom_link, timeout=10).status_code == 403
    assert shop.enrollment(checkout["order_id"])["status"] == "cancelled"


def test_refund_before_enrolment_never_reaches_zoom(shop, fake_zoom):
    checkout = shop.buy(shop.session())
    shop.refund(checkout["order_id"])
    shop.tick()
    assert shop.enrollment(checkout["order_id"])["status"] == "cancelled"
    assert registrant_posts(fake_zoom) == 0


def test_zoom_cancel_is_retried_until_zoom_takes_it(shop, fake_zoom):
    session_id = shop.session()
    meeting_id = shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["zoom_meeting_id"]
    checkout = shop.buy(session_id)
    shop.tick()
    shop.refund(checkout["order_id"])
    fake_zoom.down = True
    shop.tick()
    assert fake_zoom.registrants_of(meeting_id)[0]["status"] == "approved"
    fake_zoom.down = False
    shop.tick(timedelta(hours=1))
    assert fake_zoom.registrants_of(meeting_id)[0]["status"] == "cancelled"


def test_two_tick_runners_at_once_register_each_attendee_once(shop, fake_zoom):
    session_id = shop.session(capacity=20)
    checkouts = [shop.buy(session_id, f"buyer{i}@example.com") for i in range(8)]
    results = at_once(shop.app, enroll_due)
    assert sum(results) == 8
    assert registrant_posts(fake_zoom) == 8
    assert {shop.enrollment(c["order_id"])["status"] for c in checkouts} == {"enrolled"}


# -- session set-up at publish ------------------------------------------------------------------------------------


def _draft(shop, **overrides) -> int:
    payload = session_payload(platform="zoom", join_link=None, **overrides)
    status, body = shop.creator.post("/api/v1/sessions", payload)
    assert status == 201, body
    return body["id"]


@pytest.mark.parametrize(
    "approval_type, says",
    [(2, "Registration is off"), (0, "Manually approve")],
)
def test_publish_refuses_a_meeting_that_would_let_unpaid_people_in(shop, fake_zoom, approval_type, says):
    session_id = _draft(shop, zoom_meeting_id=fake_zoom.add_meeting(approval_type=approval_type))
    status, body = shop.creator.post(f"/api/v1/sessions/{session_id}/publish")
    assert status == 422 and says in body["fields"]["zoom_meeting_id"]
    assert shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["status"] == "draft"


def test_publish_refuses_an_unknown_meeting_and_waits_out_zoom_outages(shop, fake_zoom):
    session_id = _draft(shop, zoom_meeting_id="98765432101")
    status, body = shop.creator.post(f"/api/v1/sessions/{session_id}/publish")
    assert status == 422 and "You have no Zoom meeting with this ID" in body["fields"]["zoom_meeting_id"]
    shop.creator.patch(f"/api/v1/sessions/{session_id}", {"zoom_meeting_id": fake_zoom.add_meeting()})
    fake_zoom.down = True
    status, body = shop.creator.post(f"/api/v1/sessions/{session_id}/publish")
    assert status == 503 and body["error"] == "video_platform_unavailable"
    fake_zoom.down = False
    assert shop.creator.post(f"/api/v1/sessions/{session_id}/publish")[0] == 200


# -- demo mode and YouTube ------------------------------------------------------------------------------------------


def test_demo_mode_enrols_zoom_attendees_at_once(live_server, create_creator):
    server = live_server(demo=True)
    creator = Api(server.url, create_creator()[1])
    _status, body = creator.post("/api/v1/sessions", session_payload(platform="zoom", zoom_meeting_id="12345678901",
                                                                      join_link=None))  # fmt: skip
    assert creator.post(f"/api/v1/sessions/{body['id']}/publish")[0] == 200
    buyer = {"name": "Bo", "email": "bo@example.com", "provider": "sandbox"}
    _status, checkout = Api(server.url).post(f"/api/v1/sessions/{body['id']}/checkout", buyer)
    web = requests.Session()
    page = web.get(checkout["checkout_url"], timeout=10).text
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert web.post(checkout["checkout_url"], data={"action": "pay", "csrf_token": csrf}, timeout=10).ok
    joined = requests.get(join_url(server.app, checkout["order_id"]), allow_redirects=False, timeout=10)
    assert joined.status_code == 303 and joined.headers["Location"].startswith(server.url + "/demo/room/demo-")
    room = requests.get(joined.headers["Location"], timeout=10)
    assert room.status_code == 200 and "Demo meeting room" in room.text


def test_youtube_stream_only_for_paid_attendees_from_shortly_before_the_start(shop):
    stream = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    session_id = shop.session(platform="youtube", youtube_url=stream, join_link=None)
    checkout = shop.buy(session_id)
    assert shop.enrollment(checkout["order_id"])["status"] == "enrolled"  # no worker needed
    public = requests.get(f"{shop.url}/s/{session_id}", timeout=10).text
    ticket = requests.get(checkout["ticket_url"], timeout=10).text
    assert "dQw4w9WgXcQ" not in public and "dQw4w9WgXcQ" not in ticket
    assert "The live stream appears on this page from" in ticket
    early = shop.join(checkout)
    assert early.status_code == 403 and "The live stream opens at" in early.text
    assert "dQw4w9WgXcQ" not in str(shop.buyer.get(f"/api/v1/orders/{checkout['order_id']}"))

    shop.db(lambda: db.session.execute(
        update(LiveSession).where(LiveSession.id == session_id).values(starts_at=utcnow() + timedelta(minutes=10))
    ))  # fmt: skip
    ticket = requests.get(checkout["ticket_url"], timeout=10).text
    assert 'src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"' in ticket
    joined = shop.join(checkout)
    assert (joined.status_code, joined.headers["Location"]) == (303, stream)

    shop.refund(checkout["order_id"])
    assert shop.join(checkout).status_code == 403
    assert "dQw4w9WgXcQ" not in requests.get(checkout["ticket_url"], timeout=10).text


def test_without_a_meeting_id_the_app_schedules_one_at_publish(shop, fake_zoom):
    session_id = _draft(shop, title="Ink drawing", duration_minutes=75)
    assert shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["zoom_meeting_id"] is None
    status, published = shop.creator.post(f"/api/v1/sessions/{session_id}/publish")
    assert status == 200
    [created] = fake_zoom.calls("POST", "/users/me/meetings")
    assert (created.body["topic"], created.body["duration"]) == ("Ink drawing", 75)
    meeting = fake_zoom.meetings[("meetings", published["zoom_meeting_id"])]
    assert meeting["settings"]["approval_type"] == 1  # registration required, approved by the app only
    checkout = shop.buy(session_id)
    shop.tick()
    assert (
        shop.join(checkout).headers["Location"] == fake_zoom.registrants_of(published["zoom_meeting_id"])[0]["join_url"]
    )


def test_while_zoom_is_down_a_tick_stops_at_the_first_failure(shop, fake_zoom):
    session_id = shop.session()
    checkouts = [shop.buy(session_id, f"b{i}@example.com") for i in range(3)]
    fake_zoom.down = True
    shop.tick()
    attempts = sorted(shop.enrollment(c["order_id"])["attempts"] for c in checkouts)
    assert attempts == [0, 0, 1]
    fake_zoom.down = False
    assert shop.tick(timedelta(minutes=5)) == 3


def test_a_published_session_cannot_switch_to_a_meeting_without_registration(shop, fake_zoom):
    session_id = shop.session()
    before = shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["zoom_meeting_id"]
    open_meeting = fake_zoom.add_meeting(approval_type=2)
    status, body = shop.creator.patch(f"/api/v1/sessions/{session_id}", {"zoom_meeting_id": open_meeting})
    assert status == 422 and "Registration is off" in body["fields"]["zoom_meeting_id"]
    assert shop.creator.get(f"/api/v1/sessions/{session_id}")[1]["zoom_meeting_id"] == before
    good = fake_zoom.add_meeting()
    assert shop.creator.patch(f"/api/v1/sessions/{session_id}", {"zoom_meeting_id": good})[0] == 200
