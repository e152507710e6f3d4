"""The Zoom client against the fake Zoom over real HTTP: OAuth, retries, clear errors, webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from integrations.video import (
    ApprovalType,
    Attendee,
    MeetingNotFound,
    MeetingRef,
    NewMeeting,
    RegistrationNotEnabled,
    UserNotFound,
    VideoConfigurationError,
    VideoError,
    VideoWebhookError,
)
from integrations.video.youtube import embed_url, video_id
from integrations.video.zoom import ZoomClient, parse_event, url_validation_answer, verify_webhook
from tests.conftest import free_port
from tests.fakes.fake_zoom import Reply


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake_zoom, sleeps) -> ZoomClient:
    return ZoomClient(
        fake_zoom.account_id,
        fake_zoom.client_id,
        fake_zoom.client_secret,
        api_base=fake_zoom.api_base,
        oauth_url=fake_zoom.oauth_url,
        max_retries=2,
        backoff_seconds=0.5,
        max_sleep_seconds=30,
        sleep=sleeps,
    )


def bo() -> Attendee:
    return Attendee.from_name("bo@example.com", "Bo Van Buyer")


def test_token_is_fetched_once_with_basic_auth_and_reused(client, fake_zoom):
    meeting_id = fake_zoom.add_meeting()
    client.get_meeting(MeetingRef(meeting_id))
    client.get_meeting(MeetingRef(meeting_id))
    [token_call] = fake_zoom.calls("POST", "/oauth/token")
    assert token_call.query == {"grant_type": "account_credentials", "account_id": fake_zoom.account_id}
    assert token_call.headers["Authorization"].startswith("Basic ")
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in fake_zoom.calls("GET", meeting_id))


def test_token_is_renewed_shortly_before_it_expires(fake_zoom, sleeps):
    now = [1_000_000.0]
    client = ZoomClient(fake_zoom.account_id, fake_zoom.client_id, fake_zoom.client_secret,
                        api_base=fake_zoom.api_base, oauth_url=fake_zoom.oauth_url, clock=lambda: now[0])  # fmt: skip
    meeting_id = fake_zoom.add_meeting()
    client.get_meeting(MeetingRef(meeting_id))
    now[0] += 3599 - 120
    client.get_meeting(MeetingRef(meeting_id))
    assert len(fake_zoom.calls("POST", "/oauth/token")) == 1
    now[0] += 90  # within the last minute of the token's life
    client.get_meeting(MeetingRef(meeting_id))
    assert len(fake_zoom.calls("POST", "/oauth/token")) == 2


def test_a_revoked_token_is_replaced_once_on_401(client, fake_zoom):
    meeting_id = fake_zoom.add_meeting()
    client.get_meeting(MeetingRef(meeting_id))
    fake_zoom.tokens.clear()
    assert client.get_meeting(MeetingRef(meeting_id)).meeting_id == meeting_id
    assert len(fake_zoom.calls("POST", "/oauth/token")) == 2


def test_wrong_credentials_are_a_configuration_error(fake_zoom):
    client = ZoomClient(fake_zoom.account_id, fake_zoom.client_id, "wrong",
                        api_base=fake_zoom.api_base, oauth_url=fake_zoom.oauth_url)  # fmt: skip
    with pytest.raises(VideoConfigurationError, match="ZOOM_CLIENT_SECRET"):
        client.get_meeting(MeetingRef(fake_zoom.add_meeting()))


def test_registrant_is_added_and_approved_on_a_manual_approval_meeting(client, fake_zoom):
    meeting_id = fake_zoom.add_meeting(approval_type=ApprovalType.MANUAL)
    registration = client.add_registrant(MeetingRef(meeting_id), bo())
    [registrant] = fake_zoom.registrants_of(meeting_id)
    assert (registrant["id"], registrant["status"]) == (registration.registrant_id, "approved")
    assert (registrant["first_name"], registrant["last_name"]) == ("Bo", "Van Buyer")
    assert requests.get(registration.join_url, timeout=10).status_code == 200
    [status_call] = fake_zoom.calls("PUT", "/registrants/status")
    assert status_call.body == {"action": "approve", "registrants": [{"id": registration.registrant_id,
                                                                        "email": "bo@example.com"}]}  # fmt: skip


def test_a_leaked_registration_link_does_not_let_anyone_in(client, fake_zoom):
    meeting_id = fake_zoom.add_meeting(approval_type=ApprovalType.MANUAL)
    client.add_registrant(MeetingRef(meeting_id), bo())
    stranger = fake_zoom.register_publicly(meeting_id, "stranger@example.com")
    assert stranger["status"] == "pending"
    assert requests.get(stranger["join_url"], timeout=10).status_code == 403


def test_webinar_registrants_and_cancellation(client, fake_zoom):
    webinar_id = fake_zoom.add_meeting("webinar")
    ref = MeetingRef(webinar_id, "webinar")
    assert client.get_meeting(ref).kind == "webinar"
    registration = client.add_registrant(ref, bo())
    client.cancel_registrant(ref, registration.registrant_id, "bo@example.com")
    assert fake_zoom.registrants_of(webinar_id, "webinar")[0]["status"] == "cancelled"
    assert fake_zoom.calls("PUT", f"/webinars/{webinar_id}/registrants/status")[-1].body["action"] == "cancel"
    assert requests.get(registration.join_url, timeout=10).status_code == 403


def test_create_meeting_requires_registration_with_manual_approval(client, fake_zoom):
    starts = datetime(2030, 5, 4, 16, 30, tzinfo=UTC)
    info = client.create_meeting(NewMeeting("Watercolour basics", starts, 90, "Europe/Paris"))
    assert info.approval_type == ApprovalType.MANUAL and info.registration_enabled
    [call] = fake_zoom.calls("POST", "/users/me/meetings")
    assert call.body["start_time"] == "2030-05-04T16:30:00Z" and call.body["type"] == 2
    assert call.body["settings"]["approval_type"] == 1


def test_registration_not_enabled_says_what_to_change(client, fake_zoom):
    meeting_id = fake_zoom.add_meeting(approval_type=ApprovalType.NO_REGISTRATION)
    assert not client.get_meeting(MeetingRef(meeting_id)).registration_enabled
    with pytest.raises(RegistrationNotEnabled, match="Registration to Required") as error:
        client.add_registrant(MeetingRef(meeting_id), bo())
    assert not error.value.transient


def test_unknown_meeting_is_not_found(client):
    with pytest.raises(MeetingNotFound, match="does not exist"):
        client.get_meeting(MeetingRef("12345678901"))
    with pytest.raises(VideoConfigurationError, match="Not a Zoom meeting id"):
        client.get_meeting(MeetingRef("12/../34"))


def test_users_are_found_by_id_or_email_and_meetings_name_their_host(client, fake_zoom):
    ada = fake_zoom.add_user("ada@example.com")
    by_email = client.get_user("Ada@Example.com")
    assert (by_email.user_id, by_email.email) == (ada["id"], "ada@example.com")
    assert client.get_user(ada["id"]) == by_email
    assert client.get_meeting(MeetingRef(fake_zoom.add_meeting(host=ada["id"]))).host_id == ada["id"]
    scheduled = client.create_meeting(NewMeeting("Ink", datetime(2030, 5, 4, tzinfo=UTC), 60, "UTC"))
    assert scheduled.host_id == client.get_user("me").user_id  # ZOOM_USER_ID's meetings are hosted by it
    invited = fake_zoom.add_user("new@example.com", status="pending")
    assert client.get_user(invited["id"]).email is None  # Zoom shows a pending user's id only
    with pytest.raises(UserNotFound, match="does not exist"):
        client.get_user("nobody@example.com")
    with pytest.raises(UserNotFound, match="Not a Zoom user"):
        client.get_user("../meetings/123")
    assert [call.path for call in fake_zoom.calls("GET", "/users/nobody@example.com")] == [
        "/v2/users/nobody@example.com"
    ]


def test_429_waits_for_retry_after_in_seconds(client, fake_zoom, sleeps):
    meeting_id = fake_zoom.add_meeting()
    client.get_meeting(MeetingRef(meeting_id))
    fake_zoom.fail_next.append(Reply(429, {"code": 429, "message": "Too many requests."}, {"Retry-After": "7"}))
    client.add_registrant(MeetingRef(meeting_id), bo())
    assert sleeps == [7.0]
    assert len(fake_zoom.registrants_of(meeting_id)) == 1


def test_429_waits_for_retry_after_as_a_date(fake_zoom, sleeps):
    now = time.time()
    client = ZoomClient(fake_zoom.account_id, fake_zoom.client_id, fake_zoom.client_secret,
                        api_base=fake_zoom.api_base, oauth_url=fake_zoom.oauth_url, sleep=sleeps,
                        clock=lambda: now)  # fmt: skip
    meeting_id = fake_zoom.add_meeting()
    when = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=12), usegmt=True)
    fake_zoom.fail_next.append(Reply(429, {"code": 429, "message": "Too many requests."}, {"Retry-After": when}))
    client.get_meeting(MeetingRef(meeting_id))
    assert len(sleeps) == 1 and 10 <= sleeps[0] <= 13


def test_a_long_retry_after_is_handed_to_the_caller(client, fake_zoom, sleeps):
    fake_zoom.fail_next.append(Reply(429, {"code": 429, "message": "Daily limit."}, {"Retry-After": "3600"}))
    with pytest.raises(VideoError) as error:
        client.get_meeting(MeetingRef(fake_zoom.add_meeting()))
    assert error.value.transient and error.value.retry_after == 3600 and sleeps == []


def test_5xx_is_retried_with_backoff_then_given_up(client, fake_zoom, sleeps):
    meeting_id = fake_zoom.add_meeting()
    fake_zoom.fail_next += [Reply(500, {"code": 500, "message": "Internal"}), Reply(502, {})]
    assert client.get_meeting(MeetingRef(meeting_id)).meeting_id == meeting_id
    assert sleeps == [0.5, 1.0]
    fake_zoom.down = True
    with pytest.raises(VideoError, match="503") as error:
        client.get_meeting(MeetingRef(meeting_id))
    assert error.value.transient


def test_unreachable_zoom_is_transient(fake_zoom, sleeps):
    client = ZoomClient("a", "b", "c", api_base=f"http://127.0.0.1:{free_port()}/v2",
                        oauth_url=f"http://127.0.0.1:{free_port()}/oauth/token", max_retries=1, sleep=sleeps,
                        backoff_seconds=0.25)  # fmt: skip
    with pytest.raises(VideoError, match="could not be reached") as error:
        client.get_meeting(MeetingRef("12345678901"))
    assert error.value.transient and sleeps == [0.25]


# -- webhooks ---------------------------------------------------------------------------------------------------


def _headers(event) -> dict:
    return {k.lower(): v for k, v in event.headers.items()}


def test_webhook_signature_and_freshness(fake_zoom):
    event = fake_zoom.event("meeting.started", "12345678901")
    parsed = verify_webhook(fake_zoom.webhook_secret, event.body, _headers(event))
    assert parse_event(event.body, parsed).meeting_id == "12345678901"
    assert parse_event(event.body, parsed).occurrence_uuid == parsed["payload"]["object"]["uuid"]
    with pytest.raises(VideoWebhookError, match="does not match"):
        verify_webhook(fake_zoom.webhook_secret, event.body, _headers(event.forged()))
    with pytest.raises(VideoWebhookError, match="does not match"):
        verify_webhook(fake_zoom.webhook_secret, event.body + b" ", _headers(event))
    stale = fake_zoom.event("meeting.started", "12345678901", timestamp=int(time.time()) - 301)
    with pytest.raises(VideoWebhookError, match="5 minutes"):
        verify_webhook(fake_zoom.webhook_secret, stale.body, _headers(stale))


def test_url_validation_answer_is_the_hmac_of_the_plain_token(fake_zoom):
    challenge = fake_zoom.url_validation("qgg8vlvZRS6UYooatFL8Aw")
    event = verify_webhook(fake_zoom.webhook_secret, challenge.body, _headers(challenge))
    expected = hmac.new(fake_zoom.webhook_secret.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert url_validation_answer(fake_zoom.webhook_secret, event) == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": expected,
    }
    # Signing an arbitrary string would turn the challenge into a signature oracle for forged events.
    with pytest.raises(VideoWebhookError):
        url_validation_answer(fake_zoom.webhook_secret, json.loads(fake_zoom.url_validation("v0:1:{}").body))


def test_youtube_addresses():
    for url in ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://youtu.be/dQw4w9WgXcQ",
                "https://www.youtube.com/live/dQw4w9WgXcQ?si=x"):  # fmt: skip
        assert video_id(url) == "dQw4w9WgXcQ"
    assert embed_url("https://youtu.be/dQw4w9WgXcQ") == "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
    assert embed_url("https://example.com/watch?v=dQw4w9WgXcQ") is None
