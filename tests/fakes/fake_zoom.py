"""A local fake of Zoom served over real HTTP: Server-to-Server OAuth, the account's users, meetings and webinars
(each with its host), registrants, and webhook events signed the way Zoom signs them, with one uuid per occurrence.

Point the app at it with ``ZOOM_OAUTH_URL=fake.oauth_url`` and ``ZOOM_API_BASE=fake.api_base``.
Failures are injected with ``fake.fail_next.append(Reply(429, headers={"Retry-After": "1"}))`` or by
setting ``fake.down = True`` (every API call answers 503 until it is set back).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.local_server import LocalServer

ACCOUNT_ID = "fake_account_Q1w2E3"
CLIENT_ID = "fakeClientIdZoom"
CLIENT_SECRET = "fakeClientSecretZoom0123456789"
WEBHOOK_SECRET = "fakeWebhookSecretToken42"
DEFAULT_TOKEN_TTL = 3599

OWNER_ID = "z8yAAAAA8bbbQ"
OWNER_EMAIL = "host@example.com"

ROUTES = Map(
    [
        Rule("/oauth/token", methods=["POST"], endpoint="token"),
        Rule("/v2/users/<user_id>", methods=["GET"], endpoint="get_user"),
        Rule("/v2/users/<user_id>/meetings", methods=["POST"], endpoint="create_meeting"),
        Rule("/v2/<any(meetings, webinars):kind>/<meeting_id>", methods=["GET"], endpoint="get_meeting"),
        Rule("/v2/<any(meetings, webinars):kind>/<meeting_id>/registrants", methods=["GET"], endpoint="list"),
        Rule("/v2/<any(meetings, webinars):kind>/<meeting_id>/registrants", methods=["POST"], endpoint="register"),
        Rule("/v2/<any(meetings, webinars):kind>/<meeting_id>/registrants/status", methods=["PUT"], endpoint="status"),
        Rule("/w/<meeting_id>", methods=["GET"], endpoint="join_page"),
    ]
)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_token(length: int = 22) -> str:
    return secrets.token_urlsafe(length)[:length]


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    response = Response(json.dumps(body), status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@dataclass
class Reply:
    """An answer to send instead of the real one, once (429, 500, …)."""

    status: int
    body: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)


class ZoomError(Exception):
    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return json_response({"code": self.code, "message": self.message}, self.status)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict
    body: Any
    headers: dict


@dataclass
class SignedEvent:
    body: bytes
    headers: dict[str, str]

    def post(self, url: str) -> requests.Response:
        return requests.post(url, data=self.body, headers=self.headers, timeout=10)

    def forged(self) -> SignedEvent:
        timestamp = self.headers["x-zm-request-timestamp"]
        return SignedEvent(self.body, {**self.headers, "x-zm-signature": sign("not-the-secret", timestamp, self.body)})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


class FakeZoom(LocalServer):
    name = "fake-zoom"

    def __init__(
        self,
        account_id: str = ACCOUNT_ID,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        webhook_secret: str = WEBHOOK_SECRET,
    ) -> None:
        self.account_id = account_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_secret = webhook_secret
        self.base_url = ""
        self.token_ttl = DEFAULT_TOKEN_TTL
        self.tokens: dict[str, float] = {}
        self.users: dict[str, dict] = {}
        self.default_host = OWNER_ID
        self.meetings: dict[tuple[str, str], dict] = {}
        self.occurrences: dict[tuple[str, str, str], str] = {}
        self.registrants: dict[tuple[str, str], dict[str, dict]] = {}
        self.requests: list[RecordedRequest] = []
        self.fail_next: list[Reply] = []
        self.down = False
        self._lock = threading.RLock()
        self._add_owner()

    @property
    def oauth_url(self) -> str:
        return self.base_url + "/oauth/token"

    @property
    def api_base(self) -> str:
        return self.base_url + "/v2"

    def config(self) -> dict:
        """The app settings that point the real client at this fake."""
        return {
            "ZOOM_ACCOUNT_ID": self.account_id,
            "ZOOM_CLIENT_ID": self.client_id,
            "ZOOM_CLIENT_SECRET": self.client_secret,
            "ZOOM_WEBHOOK_SECRET_TOKEN": self.webhook_secret,
            "ZOOM_OAUTH_URL": self.oauth_url,
            "ZOOM_API_BASE": self.api_base,
        }

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.tokens.clear()
            self.users.clear()
            self._add_owner()
            self.default_host = OWNER_ID
            self.meetings.clear()
            self.occurrences.clear()
            self.registrants.clear()
            self.requests.clear()
            self.fail_next.clear()
            self.down = False
            self.token_ttl = DEFAULT_TOKEN_TTL

    # -- scenario helpers -----------------------------------------------------------------------------------------

    def _add_owner(self) -> None:
        """The account owner: `me` for a Server-to-Server app, and the host of meetings added without one."""
        self.users[OWNER_ID] = self._user(OWNER_ID, OWNER_EMAIL, "Account", "Owner", role="Owner")

    def add_user(self, email: str, *, first_name: str = "Ada", last_name: str = "Teacher",
                 status: str = "active") -> dict:  # fmt: skip
        """A user of the account (status "pending": invited, not activated yet)."""
        with self._lock:
            user = self._user(random_token(22), email, first_name, last_name, status=status)
            self.users[user["id"]] = user
            return user

    def add_meeting(self, kind: str = "meeting", *, approval_type: int = 1, topic: str = "Watercolour basics",
                    host: str | None = None, start_time: str | None = None, duration: int = 60,
                    recurring: bool = False) -> str:  # fmt: skip
        """A meeting (or webinar) that already exists on the account; approval_type 2 = registration off.

        `host` is a user id or email (default: `default_host`); a recurring meeting (type 8, or 9 for webinars)
        keeps its id for every occurrence.
        """
        with self._lock:
            meeting_id = str(secrets.randbelow(9 * 10**10) + 10**10)
            user = self._resolve_user(host or self.default_host)
            extra: dict[str, Any] = {"duration": duration}
            if start_time:
                extra["start_time"] = start_time
            if recurring:
                extra["type"] = 9 if kind == "webinar" else 8
            self.meetings[(kind + "s", meeting_id)] = self._meeting(meeting_id, kind, topic, approval_type, user,
                                                                   **extra)  # fmt: skip
            return meeting_id

    def occurrence_uuid(self, meeting_id: str, start_time: str, kind: str = "meeting") -> str:
        """Zoom's uuid of one occurrence (instance) of a meeting: the same for every event of that occurrence."""
        with self._lock:
            meeting = self.meetings.get((kind + "s", meeting_id), {})
            if meeting.get("start_time") == start_time:
                return meeting["uuid"]
            key = (kind + "s", meeting_id, start_time)
            return self.occurrences.setdefault(key, base64.b64encode(secrets.token_bytes(16)).decode())

    def registrants_of(self, meeting_id: str, kind: str = "meeting") -> list[dict]:
        with self._lock:
            return list(self.registrants.get((kind + "s", meeting_id), {}).values())

    def calls(self, method: str, path_suffix: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(path_suffix)]

    def register_publicly(self, meeting_id: str, email: str, kind: str = "meeting") -> dict:
        """Someone fills Zoom's own registration form (the link leaked): no auto_approve."""
        with self._lock:
            return self._add_registrant(kind + "s", meeting_id, {"email": email, "first_name": "Leak"})

    def event(self, event: str, meeting_id: str, kind: str = "meeting", *, timestamp: int | None = None,
              **object_fields: Any) -> SignedEvent:  # fmt: skip
        """The webhook Zoom would send for `event` about a meeting, signed with the secret token.

        The occurrence's uuid follows its `start_time` (the meeting's own by default); a field given as None is left
        out, as Zoom leaves out optional ones.
        """
        meeting = self.meetings.get((kind + "s", meeting_id), {})
        start_time = object_fields.get("start_time") or meeting.get("start_time") or now_iso()
        obj = {
            "id": meeting_id,
            "uuid": self.occurrence_uuid(meeting_id, start_time, kind),
            "host_id": meeting.get("host_id", OWNER_ID),
            "topic": meeting.get("topic", "A meeting"),
            "type": meeting.get("type", 2),
            "start_time": start_time,
            "timezone": meeting.get("timezone", "UTC"),
            "duration": meeting.get("duration", 60),
        }
        if event.endswith((".started", ".ended")):
            obj["host_email"] = meeting.get("host_email", OWNER_EMAIL)
        obj.update(object_fields)
        obj = {name: value for name, value in obj.items() if value is not None}  # None: a field Zoom left out
        payload = {"event": event, "event_ts": int(time.time() * 1000),
                   "payload": {"account_id": self.account_id, "object": obj}}  # fmt: skip
        return self.signed(payload, timestamp=timestamp)

    def participant_joined(self, meeting_id: str, *, email: str = "", registrant_id: str = "",
                           name: str = "Attendee", kind: str = "meeting", join_time: str | None = None,
                           **object_fields: Any) -> SignedEvent:  # fmt: skip
        participant = {
            "user_id": str(secrets.randbelow(10**8)),
            "user_name": name,
            "id": "",
            "participant_uuid": random_token(),
            "join_time": join_time or now_iso(),
            "email": email,
            "registrant_id": registrant_id,
            "participant_user_id": "",
            "customer_key": "",
            "phone_number": "",
        }
        return self.event(f"{kind}.participant_joined", meeting_id, kind, participant=participant, **object_fields)

    def url_validation(self, plain_token: str | None = None, *, timestamp: int | None = None) -> SignedEvent:
        payload = {"payload": {"plainToken": plain_token or random_token()}, "event_ts": int(time.time() * 1000),
                   "event": "endpoint.url_validation"}  # fmt: skip
        return self.signed(payload, timestamp=timestamp)

    def signed(self, payload: dict, *, timestamp: int | None = None) -> SignedEvent:
        body = json.dumps(payload, separators=(",", ":")).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-zm-request-timestamp": stamp,
            "x-zm-signature": sign(self.webhook_secret, stamp, body),
            "User-Agent": "Zoom Marketplace/1.0a",
        }
        return SignedEvent(body, headers)

    # -- HTTP side ------------------------------------------------------------------------------------------------

    def _wsgi_app(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        try:
            body = request.get_json(silent=True) if request.data else None
        except Exception:  # noqa: BLE001
            body = None
        with self._lock:
            self.requests.append(
                RecordedRequest(request.method, request.path, dict(request.args), body, dict(request.headers))
            )
            try:
                response = self._dispatch(request, body)
            except ZoomError as error:
                response = error.response()
        return response(environ, start_response)

    def _dispatch(self, request: Request, body: Any) -> Response:
        try:
            endpoint, args = ROUTES.bind_to_environ(request.environ).match()
        except HTTPException:
            return json_response({"code": 300, "message": "Invalid api url."}, 404)
        if endpoint == "join_page":
            return self._join_page(args["meeting_id"], request.args.get("tk", ""))
        if self.fail_next:
            reply = self.fail_next.pop(0)
            return json_response(reply.body, reply.status, reply.headers)
        if self.down:
            return json_response({"code": 503, "message": "Service Unavailable"}, 503)
        if endpoint == "token":
            return self._token(request)
        self._authenticate(request)
        return getattr(self, f"_{endpoint}")(body, **args)

    def _token(self, request: Request) -> Response:
        auth = request.authorization
        if auth is None or auth.type != "basic" or (auth.username, auth.password) != (self.client_id,
                                                                                       self.client_secret):  # fmt: skip
            return json_response({"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, 401)
        if request.args.get("grant_type") != "account_credentials":
            return json_response({"reason": "Unsupported grant type", "error": "unsupported_grant_type"}, 400)
        if request.args.get("account_id") != self.account_id:
            return json_response({"reason": "Invalid account_id", "error": "invalid_request"}, 400)
        token = "eyJzdiI6IjAwMDAwMSJ9." + random_token(40)
        self.tokens[token] = time.time() + self.token_ttl
        return json_response(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_ttl,
                "scope": "meeting:read:meeting:admin meeting:write:meeting:admin meeting:write:registrant:admin "
                "meeting:update:registrant_status:admin webinar:read:webinar:admin webinar:write:registrant:admin "
                "user:read:user:admin",
                "api_url": "https://api.zoom.us",
            }
        )

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if not token or self.tokens.get(token, 0) < time.time():
            raise ZoomError(401, 124, "Invalid access token.")

    def _user(self, user_id: str, email: str, first_name: str, last_name: str, *, status: str = "active",
              role: str = "Member") -> dict:  # fmt: skip
        return {
            "id": user_id,
            "first_name": first_name,
            "last_name": last_name,
            "display_name": f"{first_name} {last_name}".strip(),
            "email": email,
            "type": 2,
            "role_name": role,
            "pmi": secrets.randbelow(9 * 10**9) + 10**9,
            "use_pmi": False,
            "timezone": "UTC",
            "verified": 1,
            "dept": "",
            "created_at": now_iso(),
            "last_login_time": now_iso(),
            "language": "en-US",
            "status": status,
            "role_id": "2",
            "account_id": self.account_id,
            "account_number": 10009239,
        }

    def _resolve_user(self, user_id: str) -> dict:
        """`me`, a user id, or an email (any case), as Zoom takes them in `/users/{userId}`."""
        if user_id == "me":
            return self.users[OWNER_ID]
        user = self.users.get(user_id)
        if user is None:
            user = next((u for u in self.users.values() if u["email"].lower() == user_id.lower()), None)
        if user is None:
            raise ZoomError(404, 1001, f"User does not exist: {user_id}.")
        return user

    def _get_user(self, body: Any, user_id: str) -> Response:
        user = self._resolve_user(user_id)
        if user["status"] == "pending":  # Zoom shows only these until the invitation is accepted
            return json_response({"id": user["id"], "created_at": user["created_at"]})
        return json_response(user)

    def _meeting(self, meeting_id: str, kind: str, topic: str, approval_type: int, host: dict,
                 **extra: Any) -> dict:  # fmt: skip
        meeting = {
            "uuid": base64.b64encode(secrets.token_bytes(16)).decode(),
            "id": int(meeting_id),
            "host_id": host["id"],
            "host_email": host["email"],
            "topic": topic,
            "type": 5 if kind == "webinar" else 2,
            "status": "waiting",
            "start_time": now_iso(),
            "duration": 60,
            "timezone": "UTC",
            "created_at": now_iso(),
            "join_url": f"{self.base_url}/w/{meeting_id}",
            "settings": {
                "approval_type": approval_type,
                "registration_type": 1,
                "registrants_confirmation_email": True,
            },
        }
        if approval_type != 2:
            meeting["registration_url"] = f"{self.base_url}/meeting/register/{random_token(20)}"
        meeting.update(extra)
        return meeting

    def _find(self, kind: str, meeting_id: str) -> dict:
        meeting = self.meetings.get((kind, meeting_id))
        if meeting is None:
            noun = "Webinar" if kind == "webinars" else "Meeting"
            raise ZoomError(404, 3001, f"{noun} does not exist: {meeting_id}.")
        return meeting

    def _get_meeting(self, body: Any, kind: str, meeting_id: str) -> Response:
        return json_response(self._find(kind, meeting_id))

    def _create_meeting(self, body: Any, user_id: str) -> Response:
        host = self._resolve_user(user_id)
        if not isinstance(body, dict) or not body.get("topic"):
            raise ZoomError(400, 300, "Validation Failed.")
        meeting_id = str(secrets.randbelow(9 * 10**10) + 10**10)
        settings = body.get("settings") or {}
        meeting = self._meeting(
            meeting_id,
            "meeting",
            body["topic"],
            int(settings.get("approval_type", 2)),
            host,
            start_time=body.get("start_time", now_iso()),
            duration=body.get("duration", 60),
            timezone=body.get("timezone", "UTC"),
        )
        meeting["settings"].update(settings)
        self.meetings[("meetings", meeting_id)] = meeting
        return json_response(meeting, 201)

    def _list(self, body: Any, kind: str, meeting_id: str) -> Response:
        self._find(kind, meeting_id)
        registrants = list(self.registrants.get((kind, meeting_id), {}).values())
        return json_response({"page_size": 30, "total_records": len(registrants), "registrants": registrants})

    def _register(self, body: Any, kind: str, meeting_id: str) -> Response:
        registrant = self._add_registrant(kind, meeting_id, body)
        meeting = self._find(kind, meeting_id)
        return json_response(
            {
                "id": int(meeting_id),
                "join_url": registrant["join_url"],
                "registrant_id": registrant["id"],
                "start_time": meeting["start_time"],
                "topic": meeting["topic"],
                "occurrences": [],
            },
            201,
        )

    def _add_registrant(self, kind: str, meeting_id: str, body: Any) -> dict:
        meeting = self._find(kind, meeting_id)
        approval_type = meeting["settings"]["approval_type"]
        if approval_type == 2:
            raise ZoomError(404, 404, f"Registration has not been enabled for this meeting: {meeting_id}.")
        if not isinstance(body, dict) or not body.get("email") or not body.get("first_name"):
            raise ZoomError(400, 300, "Validation Failed.")
        registrants = self.registrants.setdefault((kind, meeting_id), {})
        for existing in registrants.values():
            if existing["email"].lower() == str(body["email"]).lower() and existing["status"] != "denied":
                return existing  # Zoom hands back the registration that email already has
        registrant_id = random_token(22)
        approved = body.get("auto_approve") is True or approval_type == 0
        registrant = {
            "id": registrant_id,
            "email": body["email"],
            "first_name": body["first_name"],
            "last_name": body.get("last_name", ""),
            "status": "approved" if approved else "pending",
            "create_time": now_iso(),
            "join_url": f"{self.base_url}/w/{meeting_id}?tk={random_token(40)}",
        }
        registrants[registrant_id] = registrant
        return registrant

    def _status(self, body: Any, kind: str, meeting_id: str) -> Response:
        self._find(kind, meeting_id)
        if not isinstance(body, dict) or body.get("action") not in {"approve", "cancel", "deny"}:
            raise ZoomError(400, 300, "Validation Failed.")
        new_status = {"approve": "approved", "cancel": "cancelled", "deny": "denied"}[body["action"]]
        registrants = self.registrants.get((kind, meeting_id), {})
        for entry in body.get("registrants") or []:
            registrant = registrants.get(entry.get("id", ""))
            if registrant is None:
                matches = [r for r in registrants.values() if r["email"] == entry.get("email")]
                registrant = matches[0] if matches else None
            if registrant is not None:
                registrant["status"] = new_status
        return Response(status=204)

    def _join_page(self, meeting_id: str, token: str) -> Response:
        """What a registrant's personal join URL does: opens the meeting only for an approved registration."""
        with self._lock:
            for (_kind, mid), registrants in self.registrants.items():
                if mid != meeting_id:
                    continue
                for registrant in registrants.values():
                    if registrant["join_url"].endswith(f"tk={token}") and token:
                        if registrant["status"] == "approved":
                            return Response("<h1>Joining the meeting</h1>", 200, mimetype="text/html")
                        return Response(f"<h1>Registration {registrant['status']}</h1>", 403, mimetype="text/html")
        return Response("<h1>Invalid link</h1>", 404, mimetype="text/html")
