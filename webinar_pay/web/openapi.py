"""The OpenAPI 3.1 description of JSON API v1, served as is at /api/v1/openapi.json.

Paths, answers and prose are written here; the schemas of what is sent and answered come from the pydantic models
(`services/schemas.py`, `web/responses.py`), so that the document describes what the server reads and writes.
tests/test_openapi.py checks that its paths are exactly the app's routes and validates real answers against it.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from ..limits import MAX_IDEMPOTENCY_KEY_LENGTH
from ..services.schemas import CheckoutInput, DiscountCodeInput, RefundInput, SessionInput, SessionPatch
from .responses import ANSWERS

JSON = "application/json"
IDEMPOTENCY_KEY = "^[ -~]*[!-~][ -~]*$"  # printable ASCII, not only spaces


# -- small builders --------------------------------------------------------------------------------------


def ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def schema(name: str) -> dict:
    return ref("schemas", name)


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
EMAIL_NOT_VERIFIED = ref("responses", "EmailNotVerified")
SESSION_ID = [ref("parameters", "SessionId")]
PUBLIC: list = []  # `security: []`: no token needed


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


# -- the schemas, from the models ---------------------------------------------------------------------------------


class OpenApiSchema(GenerateJsonSchema):
    """pydantic's JSON Schema (the dialect of OpenAPI 3.1) as this document writes it: no generated titles on fields,
    no `default: null`, and `"type": [T, "null"]` for a nullable field, so that its constraints stay on the field."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        generated = super().default_schema(schema)
        if generated.get("default", ...) is None:
            del generated["default"]
        return generated

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if isinstance(inner.get("type"), str) and "$ref" not in inner:
            nullable = {**inner, "type": [inner["type"], "null"]}
            if "enum" in inner:
                nullable["enum"] = [*inner["enum"], None]
            return nullable
        if "anyOf" in inner and len(inner) == 1:
            return {"anyOf": [*inner["anyOf"], {"type": "null"}]}
        return super().nullable_schema(schema)


def component_schemas() -> dict[str, Any]:
    """What clients send (read as the server validates it) and what they read (as the server writes it)."""
    inputs = (SessionInput, SessionPatch, CheckoutInput, RefundInput, DiscountCodeInput)
    models = [(model, "validation") for model in inputs]
    models += [(model, "serialization") for model in ANSWERS]
    _keys, document = models_json_schema(
        models, ref_template="#/components/schemas/{model}", schema_generator=OpenApiSchema
    )
    return document["$defs"]


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
        {"name": "discount-codes", "description": "Codes that take a percentage or an amount off your prices."},
        {"name": "attendee data", "description": "Attendees' rights: access to their data, erasure."},
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
                    "checks that meeting as publishing does. A free session on sale turns paid only once the "
                    "creator's email address is confirmed (403 `email_not_verified`)."
                ),
                "requestBody": json_body("SessionPatch", "The fields to change."),
                "responses": {
                    "200": json_response("The session after the change.", schema("Session")),
                    "401": UNAUTHORIZED,
                    "403": EMAIL_NOT_VERIFIED,
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
                    "without a meeting ID the app schedules one. A paid session needs the creator's confirmed "
                    "email address (403 `email_not_verified`)."
                ),
                "responses": {
                    "200": json_response("The session, now `published`.", schema("Session")),
                    "401": UNAUTHORIZED,
                    "403": EMAIL_NOT_VERIFIED,
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
                    "offers is used, as on the sales page. The buyer's language is `locale`, else the best match of "
                    "`Accept-Language` among `en` and `fr`, else `en`: the provider's payment page (Stripe Checkout's "
                    "`locale`, PayPal's `experience_context.locale`), the ticket page and every email of the order "
                    "are in it. `consents` lists the optional emails the buyer ticked a box for (leave it out unless "
                    "they did). With `discount_code`, the price is the session's less the code's discount, computed "
                    "by the server and sent to the provider; a use of the code is held with the seat, and given "
                    "back if the order ends unpaid. A code that makes the seat free needs no provider: the order is "
                    "`paid` at once. Rate limited per client address."
                ),
                "security": PUBLIC,
                "parameters": [
                    {
                        "name": "Accept-Language",
                        "in": "header",
                        "required": False,
                        "description": (
                            "The buyer's languages (RFC 9110), used when the body has no `locale`; a value that names "
                            "none of ours, however long or malformed, is `en`."
                        ),
                        "schema": {"type": "string"},
                        "example": "fr-FR,fr;q=0.9,en;q=0.5",
                    }
                ],
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
                    "422": error_response(
                        "`validation_error`: the body is not a JSON object, or some fields are wrong (see `fields`). "
                        "`discount_code_invalid`: the code cannot be used for this session now; the message says "
                        "why (it does not exist, does not apply to this session, is not valid yet, has expired, or "
                        "has been used up), also in `fields.discount_code`.",
                        "validation_error",
                        "discount_code_invalid",
                        message="This discount code has expired.",
                        fields={"discount_code": "This discount code has expired."},
                    ),
                    "429": ref("responses", "RateLimited"),
                    "503": ref("responses", "ProviderUnavailable"),
                },
            },
        },
        "/discount-codes": {
            "get": {
                "tags": ["discount-codes"],
                "operationId": "listDiscountCodes",
                "summary": "List your discount codes, newest first, with their uses",
                "responses": {
                    "200": json_response("Your codes (deleted ones left out).", schema("DiscountCodeList")),
                    "401": UNAUTHORIZED,
                },
            },
            "post": {
                "tags": ["discount-codes"],
                "operationId": "createDiscountCode",
                "summary": "Create a discount code",
                "description": (
                    "A percentage (`percent_off`) or an amount (`amount_off`, in minor units of `currency`) off the "
                    "price, for one of your sessions (`session_id`) or all of them, optionally within `starts_at` "
                    "and `expires_at` and for at most `max_uses` orders. An amount off applies only to sessions sold "
                    "in its currency. Codes are unique among your codes whatever their case."
                ),
                "requestBody": json_body("DiscountCodeInput", "The new code."),
                "responses": {
                    "201": {
                        **json_response("Created.", schema("DiscountCode")),
                        "links": {
                            "DeleteDiscountCode": {
                                "operationId": "deleteDiscountCode",
                                "parameters": {"code_id": "$response.body#/id"},
                            }
                        },
                    },
                    "401": UNAUTHORIZED,
                    "422": VALIDATION_FAILED,
                },
            },
        },
        "/discount-codes/{code_id}": {
            "parameters": [ref("parameters", "DiscountCodeId")],
            "delete": {
                "tags": ["discount-codes"],
                "operationId": "deleteDiscountCode",
                "summary": "Delete a discount code",
                "description": (
                    "No new order can use it, and its text is free for a new code; orders that used it keep the code "
                    "and their discount, and unpaid ones still holding a seat may still be paid. Deleting a deleted "
                    "code again answers 204 too."
                ),
                "responses": {
                    "204": {"description": "Deleted."},
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
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
                    "410": error_response(
                        "`erased`: the order's access token is real, but the buyer's personal data was erased: the "
                        "token opens nothing any more.",
                        "erased",
                        message="This ticket no longer exists: the attendee's personal data was erased.",
                    ),
                },
            },
        },
        "/orders/{order_id}/export": {
            "parameters": [ref("parameters", "OrderId")],
            "get": {
                "tags": ["attendee data"],
                "operationId": "exportAttendeeData",
                "summary": "Everything held about the attendee of one of your orders",
                "description": (
                    "The attendee's orders with you (every order with the same email address), each with its "
                    "session, enrolment, the optional emails agreed to at checkout (`consents`: what, when, from "
                    "which page), the emails planned and the copies of those sent, refunds, history and the payment "
                    "provider's events. For the attendee's right of access: hand it to them. An erased attendee's "
                    "data shows as placeholders."
                ),
                "responses": {
                    "200": json_response("The export.", schema("AttendeeExport")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                },
            },
        },
        "/orders/{order_id}/erase": {
            "parameters": [ref("parameters", "OrderId")],
            "post": {
                "tags": ["attendee data"],
                "operationId": "eraseAttendee",
                "summary": "Erase the personal data of the attendee of one of your orders",
                "description": (
                    "In every order of the attendee with you (the same email address): their name, email address, "
                    "client address hash, the copies of the emails sent to them, their join links and registrant "
                    "data, and the payer's details stored from the payment provider are replaced by a placeholder. "
                    "Emails not sent yet are cancelled, their ticket and join links answer 410, their Zoom "
                    "registration is cancelled. Amounts, dates, statuses and provider references are kept for your "
                    "accounts. Cannot be undone; a second call changes nothing and answers 200 with no ids."
                ),
                "responses": {
                    "200": json_response("Erased (now or before).", schema("Erasure")),
                    "401": UNAUTHORIZED,
                    "404": NOT_FOUND,
                    "409": error_response(
                        "A checkout of this attendee is still pending (its payment may still arrive), or the order "
                        "changed at the same moment: try again later.",
                        "conflict",
                        message="A checkout of this attendee is still open.",
                    ),
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
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
                            "pattern": IDEMPOTENCY_KEY,
                        },
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
            "DiscountCodeId": path_id("code_id", "discount code"),
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
            "EmailNotVerified": error_response(
                "The creator has not confirmed their email address yet (the link sent at sign-up, which the "
                "account page sends again): a paid session cannot go on sale until then. Drafts and free sessions "
                "are not affected.",
                "email_not_verified",
                message="Confirm your email address before selling paid seats: follow the link we sent to "
                "ada@example.com (your account page can send it again). Free sessions and drafts need no "
                "confirmation.",
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
        "schemas": component_schemas(),
    },
}
