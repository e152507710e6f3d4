"""Zoom's REST API on `requests`: Server-to-Server OAuth, meetings and webinars, registrants, webhooks.

Layered like a careful client should be: a token that is cached and refreshed once on 401, one request
function that retries what is worth retrying (429 after `Retry-After`, 5xx and timeouts with backoff) and
turns every other refusal into a clear configuration error, then small methods per resource.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from . import (
    ApprovalType,
    Attendee,
    MeetingInfo,
    MeetingNotFound,
    MeetingRef,
    NewMeeting,
    Participant,
    Registration,
    RegistrationNotEnabled,
    UserNotFound,
    VideoConfigurationError,
    VideoError,
    VideoEvent,
    VideoUser,
    VideoWebhookError,
)

MEETING_ID = re.compile(r"\d{9,12}")
KINDS = {"meeting": "meetings", "webinar": "webinars"}
TOKEN_MARGIN_SECONDS = 60
WEBHOOK_TOLERANCE_SECONDS = 300
PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Zoom's codes for "this id is not a meeting (3001) or a user (1001) of this account".
NOT_FOUND_CODES = {3001, 1001, 300}


def _retry_after_seconds(value: str | None, now: Callable[[], float]) -> float | None:
    """`Retry-After` is either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(moment.timestamp() - now(), 0.0)


class ZoomClient:
    name = "zoom"

    def __init__(
        self,
        account_id: str,
        client_id: str,
        client_secret: str,
        *,
        api_base: str = "https://api.zoom.us/v2",
        oauth_url: str = "https://zoom.us/oauth/token",
        user_id: str = "me",
        timeout: float | tuple[float, float] = (3.0, 10.0),  # requests' (connect, read), or one for both
        max_retries: int = 3,
        backoff_seconds: float = 1.0,
        max_sleep_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        http: requests.Session | None = None,
    ) -> None:
        self._account_id = account_id
        self._auth = (client_id, client_secret)
        self._api_base = api_base.rstrip("/")
        self._oauth_url = oauth_url
        self._user_id = user_id
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_sleep = max_sleep_seconds
        self._sleep = sleep
        self._clock = clock
        self._http = http or requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()

    # -- authentication ------------------------------------------------------------------------------

    def _access_token(self, *, refresh: bool = False) -> str:
        with self._token_lock:
            if not refresh and self._token and self._clock() < self._token_expires:
                return self._token
            self._token = None
            response = self._send(
                "POST",
                self._oauth_url,
                params={"grant_type": "account_credentials", "account_id": self._account_id},
                auth=self._auth,
            )
            if response.status_code != 200:
                raise VideoConfigurationError(
                    f"Zoom refused the app's credentials ({response.status_code}: {_message(response)}). "
                    "Check ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET.",
                    status=response.status_code,
                )
            body = response.json()
            expires_in = float(body.get("expires_in") or 3600)
            self._token = body["access_token"]
            self._token_expires = self._clock() + max(expires_in - TOKEN_MARGIN_SECONDS, expires_in / 2)
            return self._token

    # -- one request, with its retries ------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send with retries for what is transient; any other answer is returned as it is."""
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, timeout=self._timeout, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as error:
                if attempt >= self._max_retries:
                    raise VideoError(f"Zoom could not be reached: {type(error).__name__}", transient=True) from error
                self._sleep(self._backoff * 2**attempt)
                attempt += 1
                continue
            if response.status_code == 429:
                delay = _retry_after_seconds(response.headers.get("Retry-After"), self._clock)
                wait = self._backoff * 2**attempt if delay is None else delay
                if attempt >= self._max_retries or wait > self._max_sleep:
                    raise VideoError(f"Zoom rate limit reached: {_message(response)}", transient=True, retry_after=wait)
                self._sleep(wait)
                attempt += 1
                continue
            if response.status_code >= 500:
                if attempt >= self._max_retries:
                    raise VideoError(f"Zoom answered {response.status_code}: {_message(response)}", transient=True)
                self._sleep(self._backoff * 2**attempt)
                attempt += 1
                continue
            return response

    def _call(
        self,
        method: str,
        path: str,
        *,
        expected: tuple[int, ...],
        json_body: Any = None,
        what: str = "",
        not_found: type[VideoConfigurationError] = MeetingNotFound,
    ):
        token = self._access_token()
        kwargs: dict[str, Any] = {"json": json_body} if json_body is not None else {}
        response = self._send(method, self._api_base + path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code == 401:  # the token expired early or was revoked: one fresh try
            token = self._access_token(refresh=True)
            response = self._send(method, self._api_base + path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code in expected:
            return response.json() if response.content else {}
        raise _refusal(response, what or path, not_found)

    # -- resources --------------------------------------------------------------------------------------

    @staticmethod
    def _path(ref: MeetingRef) -> str:
        if ref.kind not in KINDS or not MEETING_ID.fullmatch(ref.meeting_id or ""):
            raise VideoConfigurationError(f"Not a Zoom {ref.kind} id: {ref.meeting_id!r}")
        return f"/{KINDS[ref.kind]}/{ref.meeting_id}"

    def get_meeting(self, ref: MeetingRef) -> MeetingInfo:
        body = self._call("GET", self._path(ref), expected=(200,), what=f"{ref.kind} {ref.meeting_id}")
        return _meeting_info(body, ref.kind)

    def create_meeting(self, meeting: NewMeeting) -> MeetingInfo:
        payload = {
            "topic": meeting.topic[:200],
            "type": 2,  # scheduled
            "start_time": meeting.starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration": meeting.duration_minutes,
            "timezone": meeting.timezone,
            "agenda": meeting.agenda[:2000],
            "settings": {
                "approval_type": int(ApprovalType.MANUAL),
                "registration_type": 1,
                "registrants_confirmation_email": False,
                "registrants_email_notification": False,
            },
        }
        body = self._call("POST", f"/users/{self._user_id}/meetings", expected=(201,), json_body=payload)
        return _meeting_info(body, "meeting")

    def get_user(self, user: str) -> VideoUser:
        """`GET /users/{userId}` takes an id or an email; a user still pending activation has no email yet."""
        user = (user or "").strip()
        if not user or len(user) > 254 or any(c.isspace() or c in "/?#%" for c in user):
            raise UserNotFound(f"Not a Zoom user id or email: {user!r}")
        path = f"/users/{quote(user, safe='@')}"
        body = self._call("GET", path, expected=(200,), what=f"user {user}", not_found=UserNotFound)
        return VideoUser(user_id=str(body["id"]), email=body.get("email") or None)

    def add_registrant(self, ref: MeetingRef, attendee: Attendee) -> Registration:
        path = self._path(ref) + "/registrants"
        payload = {
            "email": attendee.email,
            "first_name": attendee.first_name[:64],
            "last_name": attendee.last_name[:64],
            "auto_approve": True,
        }
        body = self._call("POST", path, expected=(201,), json_body=payload, what=f"{ref.kind} {ref.meeting_id}")
        registration = Registration(registrant_id=str(body["registrant_id"]), join_url=body["join_url"])
        # Manual approval keeps Zoom's own registration page closed; ours are approved explicitly.
        self._set_status(ref, "approve", registration.registrant_id, attendee.email)
        return registration

    def cancel_registrant(self, ref: MeetingRef, registrant_id: str, email: str) -> None:
        self._set_status(ref, "cancel", registrant_id, email)

    def _set_status(self, ref: MeetingRef, action: str, registrant_id: str, email: str) -> None:
        # Without an email (an attendee whose data was erased) Zoom finds the registrant by its id alone.
        registrant = {"id": registrant_id, "email": email} if email else {"id": registrant_id}
        payload = {"action": action, "registrants": [registrant]}
        self._call(
            "PUT",
            self._path(ref) + "/registrants/status",
            expected=(204, 200),
            json_body=payload,
            what=f"{ref.kind} {ref.meeting_id}",
        )


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason or ""
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or body.get("error") or body)[:300]
    return str(body)[:300]


def _refusal(
    response: requests.Response, what: str, not_found: type[VideoConfigurationError] = MeetingNotFound
) -> VideoConfigurationError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    message = _message(response)
    if "registration has not been enabled" in message.lower():
        return RegistrationNotEnabled(
            f"Zoom: registration is not enabled for {what}. In Zoom, edit it and set Registration to Required "
            "with manual approval.",
            code=code,
            status=response.status_code,
        )
    if response.status_code == 404 or code in NOT_FOUND_CODES:
        return not_found(
            f"Zoom: {what} does not exist on this Zoom account ({message}).", code=code, status=response.status_code
        )
    return VideoConfigurationError(
        f"Zoom refused the request for {what} ({response.status_code}, code {code}): {message}",
        code=code,
        status=response.status_code,
    )


def _meeting_info(body: Mapping, kind: str) -> MeetingInfo:
    settings = body.get("settings") or {}
    approval = settings.get("approval_type", ApprovalType.NO_REGISTRATION)
    try:
        approval_type = ApprovalType(int(approval))
    except (TypeError, ValueError):
        approval_type = ApprovalType.NO_REGISTRATION
    return MeetingInfo(
        meeting_id=str(body["id"]),
        kind=kind,
        topic=str(body.get("topic") or ""),
        approval_type=approval_type,
        join_url=body.get("join_url"),
        registration_url=body.get("registration_url"),
        host_id=str(body["host_id"]) if body.get("host_id") else None,
    )


# -- webhooks -------------------------------------------------------------------------------------------------


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    message = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify_webhook(secret: str, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> dict:
    """Check `x-zm-signature` and the freshness of `x-zm-request-timestamp`; returns the parsed body."""
    if not secret:
        raise VideoWebhookError("no Zoom webhook secret token is configured")
    timestamp = headers.get("x-zm-request-timestamp") or ""
    signature = headers.get("x-zm-signature") or ""
    # ASCII digits only: "²".isdigit() is true, and compare_digest refuses non-ASCII text.
    if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii() and signature):
        raise VideoWebhookError("missing x-zm-signature or x-zm-request-timestamp")
    if not hmac.compare_digest(signature, webhook_signature(secret, timestamp, body)):
        raise VideoWebhookError("the x-zm-signature does not match this body")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > WEBHOOK_TOLERANCE_SECONDS:
        raise VideoWebhookError("the x-zm-request-timestamp is more than 5 minutes away: a replay or a stale event")
    try:
        parsed = json.loads(body)
    except ValueError as error:
        raise VideoWebhookError("the body is not JSON") from error
    if not isinstance(parsed, dict) or not isinstance(parsed.get("event"), str):
        raise VideoWebhookError("the body is not a Zoom event")
    return parsed


def url_validation_answer(secret: str, event: Mapping) -> dict:
    """Zoom's challenge: echo `plainToken` with its HMAC-SHA256 (hex) under the secret token."""
    plain = (event.get("payload") or {}).get("plainToken")
    # The token is signed verbatim: anything but Zoom's short random token could make us sign a forged event.
    if not isinstance(plain, str) or not PLAIN_TOKEN.fullmatch(plain):
        raise VideoWebhookError("endpoint.url_validation without a valid plainToken")
    encrypted = hmac.new(secret.encode(), plain.encode(), hashlib.sha256).hexdigest()
    return {"plainToken": plain, "encryptedToken": encrypted}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_event(body: bytes, event: Mapping) -> VideoEvent:
    """A verified Zoom event in our words. Zoom sends no event id: the hash of the body stands in, so a
    redelivery of the same event (same body) is recognised whatever its new timestamp."""
    obj = (event.get("payload") or {}).get("object") or {}
    participant = obj.get("participant")
    return VideoEvent(
        event_id=f"{event['event']}:{hashlib.sha256(body).hexdigest()}",
        type=str(event["event"]),
        meeting_id=str(obj["id"]) if obj.get("id") not in (None, "") else None,
        occurrence_uuid=str(obj["uuid"]) if obj.get("uuid") not in (None, "") else None,
        started_at=_time(obj.get("start_time")),
        ended_at=_time(obj.get("end_time")),
        participant=Participant(
            email=(participant.get("email") or None),
            registrant_id=(participant.get("registrant_id") or None),
            name=participant.get("user_name"),
            joined_at=_time(participant.get("join_time")),
        )
        if isinstance(participant, Mapping)
        else None,
        raw=event,
    )
