"""The OpenAPI 3.1 description of JSON API v1, served as is at /api/v1/openapi.json.

Keep it in step with webinar_pay/web/api.py and services/sessions.py: tests/test_openapi.py checks that its
paths are exactly the app's routes and validates real responses against it.
"""

from __future__ import annotations

from typing import Any

from ..money import CURRENCIES
from ..services.creators import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH
from ..services.sessions import (
    CURRENCY_CODES,
    MAX_CANCELLATION_HOURS,
    MAX_CAPACITY,
    MAX_DESCRIPTION_LENGTH,
    MAX_DURATION_MINUTES,
    MAX_PRICE,
    MAX_REMINDER_OFFSET,
    MAX_REMINDERS,
    MAX_TITLE_LENGTH,
    MAX_ZOOM_MEETING_ID,
    MIN_REMINDER_OFFSET,
    MIN_ZOOM_MEETING_ID,
    READ_ONLY_FIELDS,
    STARTS_AT_PATTERN,
    ZOOM_KINDS,
    ZOOM_MEETING_ID_PATTERN,
)
from ..services.text import MAX_URL_LENGTH

JSON = "application/json"
# The payment methods a checkout may name; a deployment offers some of them (`sandbox` in demo mode only).
CHECKOUT_PROVIDERS = ("stripe", "paypal", "sandbox")
# What `services.text.clean_text` refuses, as JSON Schema patterns: control characters (a text of several lines
# keeps tab, LF and CR; a one-line value refuses the Unicode line separators too).
IDEMPOTENCY_KEY = "^[ -~]*[!-~][ -~]*$"  # printable ASCII, not only spaces
ONE_LINE = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
SEVERAL_LINES = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"


# -- small builders --------------------------------------------------------------------------------------


def ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def schema(name: str) -> dict:
    return ref("schemas", name)


def nullable(base: dict) -> dict:
    """`base` or null (JSON Schema 2020-12 spelling; OpenAPI 3.1 has no `nullable`)."""
    out = {**base, "type": [base["type"], "null"]}
    if "enum" in base:
        out["enum"] = [*base["enum"], None]
    return out


def json_response(description: str, body: dict, example: Any = None) -> dict:
    media: dict = {"schema": body}
    if example is not None:
        media["example"] = example
    return {"description": description, "content": {JSON: media}}


def json_body(name: str, description: str) -> dict:
    return {"required": True, "description": description, "content": {JSON: {"schema": schema(name)}}}


def error_response(
    description: str, *codes: str, message: str = "", fields: dict | None = None, headers: dict | None = None
) -> dict:
    """An `Error` body whose `error` is one of `codes`; `message` (and `fields`) make its example."""
    body = {"allOf": [schema("Error"), {"properties": {"error": {"enum": list(codes)}}}]}
    example = {"error": codes[0], "message": message} if message else None
    if example and fields:
        example["fields"] = fields
    response = json_response(description, body, example)
    if headers:
        response["headers"] = headers
    return response


def always(properties: dict) -> dict:
    """A response object that always carries every one of its properties (null where the type allows)."""
    return {"type": "object", "required": list(properties), "properties": properties}


def path_id(name: str, what: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id.",
        "schema": {"type": "integer", "minimum": 1},
    }


UNAUTHORIZED = ref("responses", "Unauthorized")
NOT_FOUND = ref("responses", "NotFound")
VALIDATION_FAILED = ref("responses", "ValidationFailed")
CONFLICT = ref("responses", "Conflict")
SESSION_ID = [ref("parameters", "SessionId")]
PUBLIC: list = []  # `security: []`: no token needed


# -- field schemas shared by what creators send and what the API returns -------------------------------------

UTC_TIME = {
    "type": "string",
    "format": "date-time",
    "description": "An instant in UTC, ISO 8601 ending in `Z`.",
    "examples": ["2030-06-01T16:30:00Z"],
}
TITLE = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TITLE_LENGTH,
    "pattern": ONE_LINE,
    "description": "One line, no control characters; surrounding spaces are trimmed.",
}
DESCRIPTION = {
    "type": ["string", "null"],
    "maxLength": MAX_DESCRIPTION_LENGTH,
    "pattern": SEVERAL_LINES,
    "description": "Free text of several lines (no control characters but tab and line breaks); null empties it.",
}
TIMEZONE = {
    "type": "string",
    "description": "IANA time zone the session is announced in; buyers see times in it.",
    "examples": ["Europe/Paris"],
}
DURATION = {"type": "integer", "minimum": 1, "maximum": MAX_DURATION_MINUTES, "description": "Length in minutes."}
PRICE = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_PRICE,
    "description": "Seat price in minor units of `currency` (cents; yen for JPY). 0 makes a free session.",
    "examples": [2500],
}
CAPACITY = {"type": "integer", "minimum": 1, "maximum": MAX_CAPACITY, "description": "Number of seats."}
PLATFORM = {
    "type": "string",
    "enum": ["zoom", "youtube", "link"],
    "description": "Where the session happens: a Zoom meeting or webinar, a YouTube live stream, or any join link.",
}
ZOOM_KIND = {"type": "string", "enum": list(ZOOM_KINDS), "description": "Zoom only; `meeting` by default."}
HTTP_URL = {
    "type": "string",
    "format": "uri",
    "maxLength": MAX_URL_LENGTH,
    # The outline of `services.text.URL_PATTERN` (what the server checks in full): cheaper for schema tools.
    "pattern": "^https?://\\S+$",
    "description": "A full http:// or https:// address as RFC 3986 writes it: ASCII, no spaces, `%` + two hex digits.",
}
REMINDERS = {
    "type": "array",
    "maxItems": MAX_REMINDERS,
    "items": {"type": "integer", "minimum": MIN_REMINDER_OFFSET, "maximum": MAX_REMINDER_OFFSET},
    "description": (
        f"Reminder emails, in minutes before the start: at most {MAX_REMINDERS}, each {MIN_REMINDER_OFFSET} minutes "
        "to 30 days. Duplicates are dropped; returned largest first."
    ),
    "examples": [[1440, 60]],
}

SESSION_INPUT_FIELDS = {
    "title": TITLE,
    "description": DESCRIPTION,
    "starts_at": {
        "type": "string",
        "pattern": STARTS_AT_PATTERN,
        "description": (
            "ISO 8601 date and time. With an offset (`Z`, `+02:00`) it is that instant; without one it is a wall-clock "
            "time in `timezone`, refused if the clocks skip it (DST gap). A new start (creating, or moving a session) "
            "lies between a day ago and five years from now; a time in the past is accepted, but such a session "
            "cannot be published."
        ),
        "examples": ["2030-06-01T18:30:00+02:00", "2030-06-01T18:30"],
    },
    "timezone": TIMEZONE,
    "duration_minutes": DURATION,
    "price": PRICE,
    "currency": {
        "type": "string",
        "enum": list(CURRENCY_CODES),
        "description": "ISO 4217 code, upper or lower case; stored upper case.",
        "examples": ["EUR"],
    },
    "capacity": CAPACITY,
    "platform": PLATFORM,
    "zoom_meeting_id": {
        "anyOf": [
            {"type": "string", "pattern": ZOOM_MEETING_ID_PATTERN},
            {"type": "integer", "minimum": MIN_ZOOM_MEETING_ID, "maximum": MAX_ZOOM_MEETING_ID},
            {"type": "null"},
        ],
        "description": (
            "Zoom meeting or webinar ID, 9 to 12 digits (as text, spaces ignored, or a number). It must require "
            "registration with manual approval (checked at publish). Left out, null or blank for a zoom session: the "
            "ID the session has, else the app schedules the meeting at publish. Checked whatever the platform."
        ),
        "examples": ["123 4567 8901"],
    },
    "zoom_kind": {**nullable(ZOOM_KIND), "description": "Zoom only; `meeting` by default (null: unchanged)."},
    "youtube_url": {
        **nullable(HTTP_URL),
        "description": "Required when `platform` is youtube (checked whatever the platform); null: unchanged.",
    },
    "join_link": {
        **nullable(HTTP_URL),
        "description": "Required when `platform` is link; sent to buyers once they have paid. Null: unchanged.",
    },
    "replay_url": {**nullable(HTTP_URL), "description": "A recording, sent with the thank-you email; null removes it."},
    "reminder_offsets_minutes": {
        **REMINDERS,
        "type": ["array", "null"],
        "description": REMINDERS["description"] + " Default [1440, 60]; null or [] for none.",
    },
    "cancellation_hours": {
        "type": ["integer", "null"],
        "minimum": 0,
        "maximum": MAX_CANCELLATION_HOURS,
        "description": (
            "Attendees may cancel from their ticket page for a full, automatic refund until this many hours before "
            "the start; shown before purchase. Null (the default): no self-cancellation."
        ),
    },
}


CREATE_REQUIRED = ["title", "starts_at", "timezone", "duration_minutes", "price", "currency", "capacity", "platform"]


def links_to_session() -> dict:
    """OpenAPI links from a response whose body is a Session to what can be done with it next."""
    return {
        name: {"operationId": operation, "parameters": {"session_id": "$response.body#/id"}}
        for name, operation in (
            ("GetSession", "getSession"),
            ("UpdateSession", "updateSession"),
            ("PublishSession", "publishSession"),
            ("ListSessionOrders", "listSessionOrders"),
            ("StartCheckout", "startCheckout"),
        )
    }


def platform_needs(platform: str, field: str) -> dict:
    """A session on `platform` is created with `field` (not null)."""
    return {
        "if": {"properties": {"platform": {"const": platform}}, "required": ["platform"]},
        "then": {"required": [field], "properties": {field: {"type": "string"}}},
    }


# -- the document ------------------------------------------------------------------------------------------------

OPENAPI: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "webinar_pay API",
        "version": "1",
        "description": (
            "Creators sell seats to live online sessions (Zoom, YouTube or any join link).\n\n"
            "- **Money** is always an integer in the currency's minor units: `2500` with `EUR` is 25.00 €, "
            "`3000` with `JPY` is ¥3,000.\n"
            "- **Times** are ISO 8601 strings; the API returns instants in UTC with a `Z` suffix, and each session "
            "carries the IANA `timezone` it is announced in.\n"
            "- **Authentication**: creators send `Authorization: Bearer <token>` (see `ApiToken`). Checkout is "
            "public; a buyer reads their order with the `access_token` checkout returned.\n"
            '- **Errors** are JSON: `{"error": code, "message": text}`, plus `fields` (field name -> message) on '
            "422 validation errors. `error` is a stable code for programs; `message` is for people and may be "
            "translated."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"ApiToken": []}],
    "tags": [
        {"name": "sessions", "description": "A creator's live sessions."},
        {"name": "orders", "description": "Buying seats and reading orders."},
        {"name": "meta", "description": "This description."},
    ],
    "paths": {
        "/sessions": {
            "get": {
                "tags": ["sessions"],
                "operationId": "listSessions",
                "summary": "List your sessions, latest start first",
                "responses": {
                    "200": json_response("Your sessions, in every status.", schema("SessionList")),
                    "401": UNAUTHORIZED,
                },
            },
            "post": {
                "tags": ["sessions"],
                "operationId": "createSession",
                "summary": "Create a session (as a draft)",
                "requestBody": json_body("SessionInput", "The new session."),
                "responses": {
                    "201": {
                        **json_response("Created, in status `draft`.", schema("Session")),
                        "links": links_to_session(),
                    },
                    "401": UNAUTHORIZED,
                    "422": VALIDATION_FAILED,
                },
            },
        },
        "/sessions/{session_id}": {
            "parameters": SESSION_ID,
            "get": {
                "tags": ["sessions"],
                "operationId": "getSession",
                "summary": "Read one of your sessions",
                "responses": {
                    "200": json_response("The session.", schema("Session")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            },
            "patch": {
                "tags": ["sessions"],
                "operationId": "updateSession",
                "summary": "Change some fields of a session",
                "description": (
                    "Only the fields sent change. Switching `platform` needs that platform's field "
                    "(`youtube_url` or `join_link`) unless the session already has it; for zoom a meeting ID "
                    "that is not sent is kept, or the app schedules a meeting at publish. "
                    "`capacity` cannot drop below `seats_taken`. Moving a published zoom session to another meeting "
                    "checks that meeting as publishing does."
                ),
                "requestBody": json_body("SessionPatch", "The fields to change."),
                "responses": {
                    "200": json_response("The session after the change.", schema("Session")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "409": CONFLICT,
                    "422": VALIDATION_FAILED,
                    "503": ref("responses", "VideoPlatformUnavailable"),
                },
            },
        },
        "/sessions/{session_id}/publish": {
            "parameters": SESSION_ID,
            "post": {
                "tags": ["sessions"],
                "operationId": "publishSession",
                "summary": "Put a draft on sale",
                "description": (
                    "Publishing an already published session changes nothing and answers 200. For zoom, the "
                    "meeting must exist and require registration with manual approval (422 says what to change); "
                    "without a meeting ID the app schedules one."
                ),
                "responses": {
                    "200": json_response("The session, now `published`.", schema("Session")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "409": CONFLICT,
                    "422": VALIDATION_FAILED,
                    "503": ref("responses", "VideoPlatformUnavailable"),
                },
            },
        },
        "/sessions/{session_id}/orders": {
            "parameters": SESSION_ID,
            "get": {
                "tags": ["orders"],
                "operationId": "listSessionOrders",
                "summary": "List the orders of one of your sessions, oldest first",
                "responses": {
                    "200": json_response("Every order, whatever its status.", schema("OrderList")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            },
        },
        "/sessions/{session_id}/checkout": {
            "parameters": SESSION_ID,
            "post": {
                "tags": ["orders"],
                "operationId": "startCheckout",
                "summary": "Buy a seat (public)",
                "description": (
                    "Holds a seat for the buyer and opens the payment provider's hosted checkout: send the buyer to "
                    "`checkout_url`. The seat is held until `hold_expires_at`; the order becomes `paid` when the "
                    "provider confirms the payment. For a free session the order is `paid` at once and "
                    "`checkout_url` is the ticket page. Without `provider`, the first payment method this deployment "
                    "offers is used, as on the sales page. Rate limited per client address."
                ),
                "security": PUBLIC,
                "requestBody": json_body("CheckoutInput", "The buyer."),
                "responses": {
                    "201": {
                        **json_response("The order was created and a seat is held.", schema("CheckoutStarted")),
                        "links": {
                            "GetOrder": {
                                "operationId": "getOrder",
                                "parameters": {"order_id": "$response.body#/order_id"},
                                "description": "Read the order (with its `access_token`, or the seller's token).",
                            },
                            "RefundOrder": {
                                "operationId": "refundOrder",
                                "parameters": {"order_id": "$response.body#/order_id"},
                                "description": "The seller refunds it once it is paid.",
                            },
                        },
                    },
                    "404": NOT_FOUND,
                    "409": ref("responses", "NotForSale"),
                    "422": VALIDATION_FAILED,
                    "429": ref("responses", "RateLimited"),
                    "503": ref("responses", "ProviderUnavailable"),
                },
            },
        },
        "/orders/{order_id}": {
            "parameters": [ref("parameters", "OrderId")],
            "get": {
                "tags": ["orders"],
                "operationId": "getOrder",
                "summary": "Read an order",
                "description": "With the order's own `access_token`, or the API token of the creator selling the seat.",
                "security": [{"OrderAccessToken": []}, {"ApiToken": []}],
                "responses": {
                    "200": json_response("The order.", schema("Order")),
                    "401": error_response(
                        "No token, an unknown token, or another order's access token.",
                        "unauthorized",
                        message="A creator token or the order's access token is required.",
                    ),
                    "404": NOT_FOUND,
                },
            },
        },
        "/orders/{order_id}/refund": {
            "parameters": [ref("parameters", "OrderId")],
            "post": {
                "tags": ["orders"],
                "operationId": "refundOrder",
                "summary": "Refund an order, in full or in part",
                "description": (
                    "Gives money back through the order's payment provider. Without `amount`, all that is not "
                    "refunded yet. Once the whole payment is back the order becomes `refunded`: its seat is freed, "
                    "the buyer's access is revoked, pending emails are cancelled and the refund email is sent. "
                    "Send an `Idempotency-Key` header to make retries safe: the same key on the same order returns "
                    "the first refund (200) and gives nothing back twice; the same key with a different `amount` is "
                    "refused (422 `idempotency_key_reused`), as it is a different request. Two requests at once "
                    "never refund more than was paid."
                ),
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": (
                            "1 to 64 printable ASCII characters (not only spaces), unique per refund you mean to make."
                        ),
                        "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": IDEMPOTENCY_KEY},
                    }
                ],
                "requestBody": {
                    "required": False,
                    "description": "How much to give back; an empty body refunds all that is left.",
                    "content": {JSON: {"schema": schema("RefundInput")}},
                },
                "responses": {
                    "201": json_response(
                        "The refund was sent; `refund.status` is `succeeded`, or `pending` while the provider "
                        "finishes or a retry is scheduled.",
                        schema("RefundMade"),
                    ),
                    "200": json_response(
                        "This `Idempotency-Key` was used before: the first refund.", schema("RefundMade")
                    ),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "409": error_response(
                        "`conflict`: the order is not paid, or is refunded in full already. `refund_refused`: the "
                        "provider refused the refund (recorded as `failed`).",
                        "conflict",
                        "refund_refused",
                        message="This order has been refunded in full already.",
                    ),
                    "422": error_response(
                        "`validation_error`: the body is not a JSON object, or `amount` or the key is wrong (see "
                        "`fields`). `idempotency_key_reused`: this key was used on this order for another amount.",
                        "validation_error",
                        "idempotency_key_reused",
                        message="Please correct the marked fields.",
                        fields={"amount": "Enter an amount between 1 and 2500."},
                    ),
                },
            },
        },
        "/openapi.json": {
            "get": {
                "tags": ["meta"],
                "operationId": "getOpenApi",
                "summary": "This OpenAPI document",
                "security": PUBLIC,
                "responses": {"200": json_response("The OpenAPI 3.1 document.", {"type": "object"})},
            },
        },
    },
    "components": {
        "securitySchemes": {
            "ApiToken": {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "A creator's API token (`wp_…`), shown once by `flask --app app tokens create EMAIL`. "
                    "It gives access to that creator's sessions and orders only."
                ),
            },
            "OrderAccessToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "The `access_token` returned by checkout; it reads that one order.",
            },
        },
        "parameters": {
            "SessionId": path_id("session_id", "session"),
            "OrderId": path_id("order_id", "order"),
        },
        "responses": {
            "Unauthorized": error_response(
                "The API token is missing or unknown.",
                "unauthorized",
                message="A valid API token is required.",
                headers={
                    "WWW-Authenticate": {
                        "description": 'Always `Bearer realm="webinar_pay"`.',
                        "schema": {"type": "string"},
                    }
                },
            ),
            "NotFound": error_response(
                "No such resource, or it belongs to another creator (never reported as forbidden). For checkout: the "
                "session does not exist or is still a draft.",
                "not_found",
                message="No such session.",
            ),
            "ValidationFailed": error_response(
                "The request body is not a JSON object, or some fields are wrong (see `fields`).",
                "validation_error",
                message="Please correct the marked fields.",
                fields={"currency": "Enter an ISO 4217 currency code such as EUR."},
            ),
            "Conflict": error_response(
                "The session's status forbids this: only drafts starting in the future can be published, and "
                "cancelled or ended sessions cannot be changed.",
                "conflict",
                message="This session starts in the past: move it first.",
            ),
            "NotForSale": error_response(
                "`sold_out`: every seat is taken or held. `not_on_sale`: the session has started, ended or was "
                "cancelled.",
                "sold_out",
                "not_on_sale",
                message="Sorry, this session is sold out.",
            ),
            "RateLimited": error_response(
                "`rate_limited`: too many checkout attempts from this address; wait a minute. `too_many_holds`: this "
                "buyer (email) or this address already holds as many unpaid seats of the session as allowed "
                "(`HOLDS_PER_BUYER`, `HOLDS_PER_CLIENT`); finish or cancel a checkout, or wait for a hold to end.",
                "rate_limited",
                "too_many_holds",
            ),
            "ProviderUnavailable": error_response(
                "The payment provider could not be reached; no seat is held. Try again.", "provider_unavailable"
            ),
            "VideoPlatformUnavailable": error_response(
                "Zoom could not be reached; the session stays a draft. Try again.", "video_platform_unavailable"
            ),
        },
        "schemas": {
            "Session": always(
                {
                    "id": {"type": "integer"},
                    "title": TITLE,
                    "description": {"type": "string"},
                    "starts_at": UTC_TIME,
                    "timezone": TIMEZONE,
                    "duration_minutes": DURATION,
                    "price": PRICE,
                    "currency": {"type": "string", "enum": list(CURRENCIES), "examples": ["EUR"]},
                    "capacity": CAPACITY,
                    "seats_taken": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Seats sold plus seats held by checkouts still pending.",
                    },
                    "seats_left": {"type": "integer", "minimum": 0},
                    "status": {
                        "type": "string",
                        "enum": ["draft", "published", "ended", "cancelled"],
                        "description": "Only `published` sessions that have not started are on sale.",
                    },
                    "platform": PLATFORM,
                    "zoom_meeting_id": {"type": ["string", "null"]},
                    "zoom_kind": nullable(ZOOM_KIND),
                    "youtube_url": {"type": ["string", "null"], "format": "uri"},
                    "join_link": {"type": ["string", "null"], "format": "uri"},
                    "replay_url": {"type": ["string", "null"], "format": "uri"},
                    "reminder_offsets_minutes": REMINDERS,
                    "cancellation_hours": {"type": ["integer", "null"], "minimum": 0},
                    "public_url": {"type": "string", "format": "uri", "description": "The public sales page."},
                }
            ),
            "SessionInput": {
                "type": "object",
                "description": "Unknown fields are refused (422). Fields of another platform are ignored.",
                "required": CREATE_REQUIRED,
                "properties": SESSION_INPUT_FIELDS,
                "additionalProperties": False,
                "allOf": [
                    platform_needs("youtube", "youtube_url"),
                    platform_needs("link", "join_link"),
                ],
            },
            "SessionPatch": {
                "type": "object",
                "description": (
                    "Any subset of the session's fields; unknown fields are refused (422). A Session as returned "
                    "may be sent back whole: its read-only fields (id, status, seats_taken, seats_left, "
                    "public_url) are ignored."
                ),
                "properties": {
                    **SESSION_INPUT_FIELDS,
                    **{name: {"readOnly": True} for name in sorted(READ_ONLY_FIELDS)},
                },
                "additionalProperties": False,
            },
            "SessionList": always({"sessions": {"type": "array", "items": schema("Session")}}),
            "Order": always(
                {
                    "id": {"type": "integer"},
                    "session_id": {"type": "integer"},
                    "name": {"type": "string"},
                    "email": {"type": "string", "format": "email", "description": "Lower-cased."},
                    "status": {
                        "type": "string",
                        "enum": ["pending", "paid", "refunded", "expired", "cancelled", "failed", "disputed"],
                        "description": "`pending` holds a seat until `hold_expires_at`; `paid` has a seat.",
                    },
                    "amount": {"type": "integer", "minimum": 0, "description": "Minor units of `currency`."},
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    "provider": {
                        "type": "string",
                        "enum": ["stripe", "paypal", "sandbox", "free"],
                        "description": "`free` for orders of free sessions.",
                    },
                    "hold_expires_at": nullable(UTC_TIME),
                    "paid_at": nullable(UTC_TIME),
                    "enrollment": {
                        "description": "The buyer's way in, once paid; null before.",
                        "anyOf": [schema("Enrollment"), {"type": "null"}],
                    },
                }
            ),
            "Enrollment": always(
                {
                    "status": {"type": "string", "enum": ["pending", "enrolled", "failed", "cancelled"]},
                    "join_url": {
                        "type": ["string", "null"],
                        "format": "uri",
                        "description": "Set once `enrolled`: the buyer's personal link to the session.",
                    },
                }
            ),
            "RefundInput": {
                "type": "object",
                "properties": {
                    "amount": {
                        "type": ["integer", "null"],
                        "minimum": 1,
                        "description": (
                            "Minor units of the order's currency; at most what is not refunded yet. Left out or "
                            "null: all that is not refunded yet."
                        ),
                    },
                },
            },
            "Refund": always(
                {
                    "id": {"type": "integer"},
                    "order_id": {"type": "integer"},
                    "amount": {"type": "integer", "minimum": 1},
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    "status": {
                        "type": "string",
                        "enum": ["pending", "succeeded", "failed", "cancelled"],
                        "description": "`cancelled`: not sent, because other refunds already gave the money back "
                        "(`last_error` says so).",
                    },
                    "provider": {"type": "string", "enum": list(CHECKOUT_PROVIDERS)},
                    "provider_refund_id": {"type": ["string", "null"]},
                    "last_error": {"type": ["string", "null"], "description": "Why the last attempt failed."},
                    "created_at": UTC_TIME,
                }
            ),
            "RefundMade": always({"refund": schema("Refund"), "order": schema("Order")}),
            "OrderList": always({"orders": {"type": "array", "items": schema("Order")}}),
            "CheckoutInput": {
                "type": "object",
                "required": ["name", "email"],
                "properties": {
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_NAME_LENGTH,
                        "pattern": ONE_LINE,
                        "description": "The attendee's name: one line, no control characters.",
                    },
                    "email": {"type": "string", "format": "email", "maxLength": MAX_EMAIL_LENGTH},
                    "provider": {
                        "type": ["string", "null"],
                        "enum": [*CHECKOUT_PROVIDERS, None],
                        "description": (
                            "How the buyer pays; left out or null, the first method this deployment offers (Stripe, "
                            "then PayPal; `sandbox` in demo mode only). One it does not offer is a 422 on `provider`. "
                            "Ignored for a free session."
                        ),
                    },
                },
            },
            "CheckoutStarted": always(
                {
                    "order_id": {"type": "integer"},
                    "status": {
                        "type": "string",
                        "enum": ["pending", "paid"],
                        "description": "`paid` at once for a free session.",
                    },
                    "checkout_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "Send the buyer here: the provider's payment page, or the ticket page if free.",
                    },
                    "hold_expires_at": UTC_TIME,
                    "access_token": {
                        "type": "string",
                        "description": "Bearer token for GET /orders/{order_id} (`OrderAccessToken`). Keep it secret.",
                    },
                    "ticket_url": {
                        "type": "string",
                        "format": "uri",
                        "description": "The buyer's ticket page: payment status, then the join link.",
                    },
                }
            ),
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {
                    "error": {
                        "type": "string",
                        "description": (
                            "Stable machine code, e.g. `unauthorized`, `not_found`, `validation_error`, "
                            "`method_not_allowed` (with an `Allow` header)."
                        ),
                    },
                    "message": {"type": "string", "description": "For people; may be translated."},
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "422 only: a message per invalid field of the request body.",
                    },
                },
            },
        },
    },
}
