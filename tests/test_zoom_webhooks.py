"""POST /webhooks/zoom with events signed by the fake Zoom: the challenge, refusals, replays, start/end, attendance."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import Api, session_payload
from tests.zoom_setup import link_creator
from webinar_pay.extensions import db
from webinar_pay.models import Enrollment, LiveSession, ProviderEvent
from webinar_pay.services.enrollment import enroll_due
from webinar_pay.services.inbox import apply_webhooks


@pytest.fixture
def zoom_app(live_server, create_creator, fake_zoom):
    server = live_server(**fake_zoom.config(), ZOOM_RETRY_BACKOFF_SECONDS=0, ZOOM_MAX_RETRIES=0)
    server.creator = Api(server.url, create_creator()[1])
    server.hook = server.url + "/webhooks/zoom"
    link_creator(server.app, fake_zoom)
    return server


def _paid_session(server, fake_zoom, stripe, buyers: list[str]) -> tuple[int, str, list[dict]]:
    """A published session on a meeting the creator's Zoom user hosts, scheduled at the session's time."""
    starts = session_payload()["starts_at"]
    meeting_id = fake_zoom.add_meeting(start_time=zoom_time(datetime.fromisoformat(starts)))
    payload = session_payload(platform="zoom", zoom_meeting_id=meeting_id, join_link=None, starts_at=starts)
    session_id = server.creator.post("/api/v1/sessions", payload)[1]["id"]
    assert server.creator.post(f"/api/v1/sessions/{session_id}/publish")[0] == 200
    checkouts = []
    for email in buyers:
        buyer = {"name": "Bo Buyer", "email": email, "provider": "stripe"}
        _status, checkout = Api(server.url).post(f"/api/v1/sessions/{session_id}/checkout", buyer)
        stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1]).post(server.url + "/webhooks/stripe")
        checkouts.append(checkout)
    with server.app.app_context():
        apply_webhooks()
        enroll_due()
    return session_id, meeting_id, checkouts


def zoom_time(moment: datetime) -> str:
    """A time as Zoom writes it in events."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _events(server) -> int:
    with server.app.app_context():
        query = select(func.count()).select_from(ProviderEvent).where(ProviderEvent.provider == "zoom")
        return db.session.scalar(query)


def _session(server, session_id: int) -> LiveSession:
    with server.app.app_context():
        session = db.session.get(LiveSession, session_id)
        db.session.expunge(session)
        return session


def test_url_validation_challenge(zoom_app, fake_zoom):
    response = fake_zoom.url_validation("qgg8vlvZRS6UYooatFL8Aw").post(zoom_app.hook)
    assert response.status_code == 200
    expected = hmac.new(fake_zoom.webhook_secret.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert response.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}


def test_bad_signature_stale_timestamp_and_unsigned_events_are_refused(zoom_app, fake_zoom):
    meeting_id = fake_zoom.add_meeting()
    forged = fake_zoom.event("meeting.started", meeting_id).forged().post(zoom_app.hook)
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_signature"
    stale = fake_zoom.event("meeting.started", meeting_id, timestamp=int(time.time()) - 600).post(zoom_app.hook)
    assert stale.status_code == 400 and "5 minutes" in stale.json()["message"]
    unsigned = requests.post(zoom_app.hook, data=fake_zoom.event("meeting.started", meeting_id).body, timeout=10,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert unsigned.status_code == 400
    bad_challenge = fake_zoom.url_validation().forged().post(zoom_app.hook)
    assert bad_challenge.status_code == 400 and "encryptedToken" not in bad_challenge.text
    assert _events(zoom_app) == 0


@pytest.mark.parametrize(
    "headers",
    [{"x-zm-request-timestamp": "²"}, {"x-zm-signature": "v0=é"}, {"x-zm-request-timestamp": "", "x-zm-signature": ""}],
)
def test_odd_signature_headers_are_refused_with_a_400(zoom_app, fake_zoom, headers):
    event = fake_zoom.event("meeting.started", fake_zoom.add_meeting())
    sent = {"Content-Type": "application/json", "x-zm-request-timestamp": str(int(time.time())),
            "x-zm-signature": "v0=" + "0" * 64}  # fmt: skip
    sent.update({name: value.encode() for name, value in headers.items()})  # the raw bytes a client may send
    response = requests.post(zoom_app.hook, data=event.body, headers=sent, timeout=10)
    assert response.status_code == 400 and response.json()["error"] == "invalid_signature"
    assert _events(zoom_app) == 0


def test_start_end_replay_and_attendance(zoom_app, fake_zoom, fake_stripe):
    buyers = ["bo@example.com", "Ann@Example.com", "absent@example.com"]
    session_id, meeting_id, checkouts = _paid_session(zoom_app, fake_zoom, fake_stripe, buyers)
    bo = fake_zoom.registrants_of(meeting_id)[0]

    scheduled = _session(zoom_app, session_id).starts_at
    real_start = zoom_time(scheduled + timedelta(minutes=1, seconds=2))  # the host was a minute late
    started = fake_zoom.event("meeting.started", meeting_id, start_time=real_start)
    assert started.post(zoom_app.hook).json()["outcome"] == "started"
    assert _session(zoom_app, session_id).started_at == scheduled + timedelta(minutes=1, seconds=2)

    joined = fake_zoom.participant_joined(meeting_id, registrant_id=bo["id"], email=bo["email"], start_time=real_start)
    assert joined.post(zoom_app.hook).json()["outcome"] == "attended"
    assert joined.post(zoom_app.hook).json()["outcome"] == "duplicate"
    redelivered = fake_zoom.signed(json.loads(joined.body), timestamp=int(time.time()) + 1)  # signed anew
    assert redelivered.post(zoom_app.hook).json()["outcome"] == "duplicate"
    by_email = fake_zoom.participant_joined(meeting_id, email="ann@example.com", start_time=real_start)  # no link
    assert by_email.post(zoom_app.hook).json()["outcome"] == "attended"
    stranger = fake_zoom.participant_joined(meeting_id, email="host@example.com", start_time=real_start)
    assert stranger.post(zoom_app.hook).json()["outcome"] == "unknown_participant"

    real_end = scheduled + timedelta(minutes=96)
    ended = fake_zoom.event("meeting.ended", meeting_id, start_time=real_start, end_time=zoom_time(real_end))
    assert ended.post(zoom_app.hook).json()["outcome"] == "ended"
    assert _session(zoom_app, session_id).ended_at == real_end
    with zoom_app.app.app_context():
        attended = dict(db.session.execute(select(Enrollment.order_id, Enrollment.attended)).all())
    assert attended == {checkouts[0]["order_id"]: True, checkouts[1]["order_id"]: True,
                        checkouts[2]["order_id"]: False}  # fmt: skip
    assert _events(zoom_app) == 5

    web = requests.Session()
    csrf = web.get(zoom_app.url + "/login", timeout=10).text.split('name="csrf_token" value="')[1].split('"')[0]
    login = {"email": "creator@example.com", "password": "correct horse battery", "csrf_token": csrf}
    web.post(zoom_app.url + "/login", data=login, timeout=10)
    page = web.get(f"{zoom_app.url}/dashboard/sessions/{session_id}", timeout=10).text
    rows = {email.lower(): page.split(email.lower(), 1)[1].split("</tr>", 1)[0] for email in buyers}
    attended = {email: row.rstrip().rsplit("<td>", 1)[1] for email, row in rows.items()}
    assert attended == {"bo@example.com": "yes</td>", "ann@example.com": "yes</td>", "absent@example.com": "no</td>"}


def test_events_about_other_meetings_are_recorded_and_ignored(zoom_app, fake_zoom):
    response = fake_zoom.event("meeting.started", "11122233344").post(zoom_app.hook)
    assert response.json()["outcome"] == "unknown_meeting"
    response = fake_zoom.event("recording.completed", "11122233344").post(zoom_app.hook)
    assert response.json()["outcome"] == "ignored"


def test_zoom_webhooks_without_a_secret_are_not_accepted(live_server, fake_zoom):
    server = live_server(demo=True)
    response = fake_zoom.url_validation().post(server.url + "/webhooks/zoom")
    assert response.status_code == 404 and response.json()["error"] == "not_configured"
