"""A local fake of the Stripe API served over real HTTP, plus webhook events signed like Stripe signs them.

Point the official library at it with
``stripe.StripeClient(fake.api_key, base_addresses={"api": fake.base_url}, max_network_retries=0)``.
Every object it serves starts as a deep copy of Stripe's published example in ``stripe_objects.json``.
"""

from __future__ import annotations

import copy
import html
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import requests
import stripe
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.local_server import LocalServer

EXAMPLES: dict[str, dict] = json.loads(Path(__file__).with_name("stripe_objects.json").read_text())

DEFAULT_API_KEY = "sk_test_fake"
DEFAULT_WEBHOOK_SECRET = "whsec_test_fake"
# The languages Stripe Checkout takes for `locale` (its API reference), "auto" following the buyer's browser.
CHECKOUT_LOCALES = frozenset(
    "auto bg cs da de el en en-GB es es-419 et fi fil fr fr-CA hr hu id it ja ko lt lv ms mt nb nl pl pt pt-BR ro ru "
    "sk sl sv th tr vi zh zh-HK zh-TW".split()
)
MIN_EXPIRY_SECONDS = 30 * 60
MAX_EXPIRY_SECONDS = 24 * 60 * 60
EXPIRY_TOLERANCE_SECONDS = 5
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

NO_API_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, "
    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). "
    "See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."
)

ROUTES = Map(
    [
        Rule("/v1/checkout/sessions", methods=["POST"], endpoint="create_session"),
        Rule("/v1/checkout/sessions/<session_id>", methods=["GET"], endpoint="get_session"),
        Rule("/v1/checkout/sessions/<session_id>/expire", methods=["POST"], endpoint="expire_session_now"),
        Rule("/v1/refunds", methods=["POST"], endpoint="create_refund"),
        Rule("/v1/refunds/<refund_id>", methods=["GET"], endpoint="get_refund"),
        Rule("/v1/payment_intents/<intent_id>", methods=["GET"], endpoint="get_payment_intent"),
        Rule("/v1/charges/<charge_id>", methods=["GET"], endpoint="get_charge"),
        Rule("/v1/events/<event_id>", methods=["GET"], endpoint="get_event"),
    ]
)
PAY_PAGE = re.compile(r"/pay/([A-Za-z0-9_]+)")


def example(name: str) -> dict:
    return copy.deepcopy(EXAMPLES[name])


def random_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def decode_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn Stripe's bracket form encoding (``a[b][0][c]=v``) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        name, _, rest = key.partition("[")
        path = [name, *rest[:-1].split("][")] if rest else [name]
        node = root
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return _indexed_dicts_to_lists(root)


def _indexed_dicts_to_lists(value: Any, key: str = "") -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _indexed_dicts_to_lists(v, k) for k, v in value.items()}
    if key != "metadata" and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


class FakeError(Exception):
    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": error_type, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param

    def response(self) -> Response:
        return json_response({"error": self.body}, self.status)


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> FakeError:
    return FakeError(400, "invalid_request_error", message, code=code, param=param)


def missing(kind: str, object_id: str, param: str, status: int = 404) -> FakeError:
    return FakeError(
        status, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def require(params: Any, name: str, param: str | None = None) -> Any:
    value = params.get(name) if isinstance(params, dict) else None
    if value in (None, "", [], {}):
        param = param or name
        raise invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")
    return value


def to_int(value: Any, param: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", param=param, code="parameter_invalid_integer") from None
    if number < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.", param=param)
    return number


def string_dict(value: Any) -> dict[str, str]:
    return dict(value) if isinstance(value, dict) else {}


def json_response(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body, indent=2), status, mimetype="application/json")


def mask_key(key: str) -> str:
    prefix = key[:8] if len(key) > 12 else ""
    return prefix + "*" * (len(key) - len(prefix) - 4) + key[-4:]


def format_amount(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    body: str


@dataclass
class SignedEvent:
    id: str
    type: str
    payload: str
    headers: dict[str, str]

    @classmethod
    def sign(cls, event_id: str, event_type: str, payload: str, secret: str) -> SignedEvent:
        signature = stripe.WebhookSignature.generate_signature_header(payload, secret)
        return cls(event_id, event_type, payload, {"Stripe-Signature": signature, "Content-Type": "application/json"})

    def post(self, url: str) -> requests.Response:
        return requests.post(url, data=self.payload.encode("utf-8"), headers=self.headers, timeout=10)

    def forged(self) -> SignedEvent:
        return SignedEvent.sign(self.id, self.type, self.payload, random_id("whsec_"))


class FakeStripe(LocalServer):
    name = "fake-stripe"

    def __init__(self, api_key: str = DEFAULT_API_KEY, webhook_secret: str = DEFAULT_WEBHOOK_SECRET) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.base_url = ""
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every object, request and idempotency key, as a new Stripe account would; answer at once."""
        super().reset()
        with self._lock:
            self.requests: list[RecordedRequest] = []
            self.idempotency_keys: list[str] = []
            self.sessions: dict[str, dict] = {}
            self.session_params: dict[str, dict] = {}
            self.payment_intents: dict[str, dict] = {}
            self.refunds: dict[str, dict] = {}
            self.disputes: dict[str, dict] = {}
            self.next_refund_status = "succeeded"  # "pending": refunds wait, as for some payment methods
            self.events: list[SignedEvent] = []
            self.fail_next: list[tuple] = []
            self._replays: dict[str, tuple[tuple, int, str]] = {}

    def refunded_amount(self, payment_intent_id: str) -> int:
        with self._lock:
            return sum(
                refund["amount"]
                for refund in self.refunds.values()
                if refund["payment_intent"] == payment_intent_id and refund["status"] in ("succeeded", "pending")
            )

    # Scenario helpers: change state as Stripe would, and return the webhook Stripe would send.

    def complete_session(
        self,
        session_id: str,
        *,
        payment_status: str = "paid",
        amount_total: int | None = None,
        currency: str | None = None,
    ) -> SignedEvent:
        with self._lock:
            session = self.sessions[session_id]
            if amount_total is not None:
                session["amount_total"] = session["amount_subtotal"] = amount_total
            if currency is not None:
                session["currency"] = currency
            session.update(status="complete", payment_status=payment_status, url=None)
            session["customer_details"] = self._customer_details(session)
            self._sync_payment_intent(session, "succeeded" if payment_status == "paid" else "processing")
            return self.event("checkout.session.completed", session)

    def async_payment_succeeded(self, session_id: str) -> SignedEvent:
        with self._lock:
            session = self.sessions[session_id]
            session["payment_status"] = "paid"
            self._sync_payment_intent(session, "succeeded")
            return self.event("checkout.session.async_payment_succeeded", session)

    def async_payment_failed(self, session_id: str) -> SignedEvent:
        with self._lock:
            session = self.sessions[session_id]
            session["payment_status"] = "unpaid"
            self._sync_payment_intent(session, "requires_payment_method")
            return self.event("checkout.session.async_payment_failed", session)

    def expire_session(self, session_id: str) -> SignedEvent:
        with self._lock:
            session = self.sessions[session_id]
            session.update(status="expired", url=None)
            return self.event("checkout.session.expired", session)

    def charge(self, intent_id: str) -> dict:
        """The PaymentIntent's charge as Stripe shows it, refunds and disputes included."""
        with self._lock:
            intent = self.payment_intents[intent_id]
            charge = example("charge")
            refunded = self.refunded_amount(intent_id)
            charge.update(
                id=intent["latest_charge"],
                amount=intent["amount_received"],
                amount_captured=intent["amount_received"],
                amount_refunded=refunded,
                refunded=refunded >= intent["amount_received"],
                currency=intent["currency"],
                payment_intent=intent_id,
                metadata=dict(intent["metadata"]),
                disputed=any(d["payment_intent"] == intent_id for d in self.disputes.values()),
                created=int(time.time()),
                livemode=False,
            )
            charge["refunds"] = {
                "object": "list",
                "data": [copy.deepcopy(r) for r in self.refunds.values() if r["payment_intent"] == intent_id],
                "has_more": False,
                "url": f"/v1/charges/{charge['id']}/refunds",
            }
            return charge

    def refund_from_dashboard(self, intent_id: str, amount: int | None = None) -> SignedEvent:
        """The seller refunds in Stripe's dashboard; returns the `charge.refunded` event."""
        with self._lock:
            intent = self.payment_intents[intent_id]
            refund = example("refund")
            refund.update(
                id=random_id("re_"),
                amount=amount if amount is not None else intent["amount_received"] - self.refunded_amount(intent_id),
                currency=intent["currency"],
                payment_intent=intent_id,
                charge=intent["latest_charge"],
                created=int(time.time()),
                metadata={},
                reason="requested_by_customer",
                status="succeeded",
            )
            self.refunds[refund["id"]] = refund
            return self.event("charge.refunded", self.charge(intent_id))

    def update_refund(self, refund_id: str, status: str, failure_reason: str | None = None) -> SignedEvent:
        """A refund moves on (pending -> succeeded, or succeeded -> failed); returns `refund.updated`."""
        with self._lock:
            refund = self.refunds[refund_id]
            refund["status"] = status
            if failure_reason:
                refund["failure_reason"] = failure_reason
            return self.event("refund.updated", refund)

    def open_dispute(self, intent_id: str, reason: str = "fraudulent") -> SignedEvent:
        """The card holder disputes the payment with their bank; returns `charge.dispute.created`."""
        with self._lock:
            intent = self.payment_intents[intent_id]
            dispute = example("dispute")
            dispute.update(
                id=random_id("dp_"),
                amount=intent["amount_received"],
                currency=intent["currency"],
                charge=intent["latest_charge"],
                payment_intent=intent_id,
                reason=reason,
                status="needs_response",
                created=int(time.time()),
                livemode=False,
                is_charge_refundable=False,
            )
            self.disputes[dispute["id"]] = dispute
            return self.event("charge.dispute.created", dispute)

    def close_dispute(self, dispute_id: str, status: str) -> SignedEvent:
        """The bank decides: `won` or `lost`; returns `charge.dispute.closed`."""
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = status
            return self.event("charge.dispute.closed", dispute)

    def event(self, type: str, obj: dict) -> SignedEvent:
        with self._lock:
            event = example("event")
            event.update(
                id=random_id("evt_"),
                created=int(time.time()),
                type=type,
                livemode=False,
                api_version=stripe.api_version,
                pending_webhooks=1,
                data={"object": copy.deepcopy(obj)},
            )
            signed = SignedEvent.sign(event["id"], type, json.dumps(event, indent=2), self.webhook_secret)
            self.events.append(signed)
            return signed

    def _customer_details(self, session: dict) -> dict:
        details = example("checkout.session")["customer_details"]
        if session["customer_email"]:
            details["email"] = session["customer_email"]
        return details

    def _sync_payment_intent(self, session: dict, status: str) -> None:
        intent = self.payment_intents.get(session["payment_intent"] or "")
        if intent is None:
            intent_data = string_dict(self.session_params[session["id"]].get("payment_intent_data"))
            intent = example("payment_intent")
            intent_id = random_id("pi_")
            intent.update(
                id=intent_id,
                client_secret=f"{intent_id}_secret_{random_id('', 25)}",
                created=int(time.time()),
                livemode=False,
                metadata=string_dict(intent_data.get("metadata")),
                receipt_email=session["customer_email"],
                canceled_at=None,
                last_payment_error=None,
                next_action=None,
                processing=None,
                transfer_data=None,
            )
            self.payment_intents[intent_id] = intent
            session["payment_intent"] = intent_id
        succeeded = status == "succeeded"
        intent.update(
            status=status,
            amount=session["amount_total"],
            currency=session["currency"],
            amount_received=session["amount_total"] if succeeded else 0,
        )
        if succeeded and intent["latest_charge"] is None:
            intent["latest_charge"] = random_id("ch_")

    # HTTP side.

    def _wsgi_app(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data(as_text=True)
        query = body if request.method == "POST" else request.query_string.decode()
        params = decode_params(parse_qsl(query, keep_blank_values=True))
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.path, params, dict(request.headers), body))
            if key:
                self.idempotency_keys.append(key)
            try:
                response = self._dispatch(request, params, key)
            except FakeError as error:
                response = error.response()
        response.headers["Request-Id"] = random_id("req_", 14)
        return response(environ, start_response)

    def _dispatch(self, request: Request, params: dict, key: str | None) -> Response:
        page = PAY_PAGE.fullmatch(request.path)
        if page and request.method == "GET":
            return self._checkout_page(page[1])
        if self.fail_next:
            status, error_type, message, *code = self.fail_next.pop(0)
            raise FakeError(status, error_type, message, code=code[0] if code else None)
        self._authenticate(request)
        try:
            endpoint, args = ROUTES.bind_to_environ(request.environ).match()
        except HTTPException:
            raise FakeError(
                404,
                "invalid_request_error",
                f"Unrecognized request URL ({request.method}: {request.path}). "
                "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
            ) from None
        handler = getattr(self, f"_{endpoint}")
        if request.method != "POST" or not key:
            return json_response(handler(params, **args))
        fingerprint = (request.method, request.path, params)
        if key in self._replays:
            seen, status, body = self._replays[key]
            if seen != fingerprint:
                raise FakeError(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                )
            replay = Response(body, status, mimetype="application/json")
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        response = json_response(handler(params, **args))
        self._replays[key] = (fingerprint, response.status_code, response.get_data(as_text=True))
        return response

    def _authenticate(self, request: Request) -> None:
        auth = request.authorization
        key = None
        if auth is not None:
            key = auth.token if auth.type == "bearer" else auth.username
        if not key:
            raise FakeError(401, "invalid_request_error", NO_API_KEY_MESSAGE)
        if key != self.api_key:
            raise FakeError(401, "invalid_request_error", f"Invalid API Key provided: {mask_key(key)}")

    def _checkout_page(self, session_id: str) -> Response:
        session = self.sessions.get(session_id)
        if session is None:
            return Response("<!doctype html><title>Not found</title><h1>Not found</h1>", 404, mimetype="text/html")
        amount = format_amount(session["amount_total"], session["currency"])
        page = (
            "<!doctype html><title>Fake Stripe Checkout</title><h1>Fake Stripe Checkout</h1>"
            f"<p>{html.escape(session_id)}: {html.escape(amount)} ({html.escape(session['status'])})</p>"
        )
        return Response(page, mimetype="text/html")

    def _create_session(self, params: dict) -> dict:
        now = int(time.time())
        mode = require(params, "mode")
        if mode != "payment":
            raise invalid(f"Invalid mode: {mode}. This fake supports only `payment`.", param="mode")
        line_items = require(params, "line_items")
        if not isinstance(line_items, list):
            raise invalid("Invalid array", param="line_items")
        total = 0
        currencies = set()
        for index, item in enumerate(line_items):
            where = f"line_items[{index}]"
            price_data = require(item, "price_data", f"{where}[price_data]")
            currencies.add(require(price_data, "currency", f"{where}[price_data][currency]").lower())
            unit_amount = to_int(
                require(price_data, "unit_amount", f"{where}[price_data][unit_amount]"),
                f"{where}[price_data][unit_amount]",
            )
            product_data = require(price_data, "product_data", f"{where}[price_data][product_data]")
            require(product_data, "name", f"{where}[price_data][product_data][name]")
            quantity = to_int(require(item, "quantity", f"{where}[quantity]"), f"{where}[quantity]", minimum=1)
            total += unit_amount * quantity
        if len(currencies) > 1:
            raise invalid("All line items must have the same currency.", param="line_items")
        success_url = require(params, "success_url")
        locale = params.get("locale")
        if locale is not None and locale not in CHECKOUT_LOCALES:
            raise invalid(f"Invalid locale: must be one of {', '.join(sorted(CHECKOUT_LOCALES))}", param="locale")
        expires_at = to_int(require(params, "expires_at"), "expires_at")
        if expires_at - now < MIN_EXPIRY_SECONDS - EXPIRY_TOLERANCE_SECONDS:
            raise invalid(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
                param="expires_at",
            )
        if expires_at - now > MAX_EXPIRY_SECONDS:
            raise invalid(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
                param="expires_at",
            )

        session_id = random_id("cs_test_", 58)
        session = example("checkout.session")
        session.update(
            id=session_id,
            url=f"{self.base_url}/pay/{session_id}",
            created=now,
            expires_at=expires_at,
            livemode=False,
            mode="payment",
            status="open",
            payment_status="unpaid",
            payment_intent=None,
            amount_subtotal=total,
            amount_total=total,
            currency=currencies.pop(),
            success_url=success_url,
            cancel_url=params.get("cancel_url"),
            client_reference_id=params.get("client_reference_id"),
            locale=locale,
            customer_email=params.get("customer_email"),
            customer_details=None,
            metadata=string_dict(params.get("metadata")),
            after_expiration=None,
            collected_information=None,
            currency_conversion=None,
            shipping_address_collection=None,
            shipping_cost=None,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        )
        self.sessions[session_id] = session
        self.session_params[session_id] = copy.deepcopy(params)
        return copy.deepcopy(session)

    def _get_session(self, params: dict, session_id: str) -> dict:
        if session_id not in self.sessions:
            raise missing("checkout.session", session_id, "session")
        return copy.deepcopy(self.sessions[session_id])

    def _expire_session_now(self, params: dict, session_id: str) -> dict:
        session = self._get_session(params, session_id)
        if session["status"] != "open":
            raise invalid(
                f"Only Checkout Sessions with a status of `open` can be expired. "
                f"This session has a status of `{session['status']}`."
            )
        self.sessions[session_id].update(status="expired", url=None)
        return copy.deepcopy(self.sessions[session_id])

    def _create_refund(self, params: dict) -> dict:
        intent_id = require(params, "payment_intent")
        intent = self.payment_intents.get(intent_id)
        if intent is None:
            raise missing("payment_intent", intent_id, "payment_intent", status=400)
        if intent["status"] != "succeeded":
            raise invalid(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        remaining = intent["amount_received"] - self.refunded_amount(intent_id)
        if remaining <= 0:
            raise invalid(
                f"Charge {intent['latest_charge']} has already been refunded.", code="charge_already_refunded"
            )
        amount = to_int(params["amount"], "amount", minimum=1) if "amount" in params else remaining
        if amount > remaining:
            raise invalid(
                f"Refund amount ({format_amount(amount, intent['currency'])}) is greater than unrefunded "
                f"amount on charge ({format_amount(remaining, intent['currency'])})",
                param="amount",
            )
        reason = params.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid(f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}", param="reason")
        refund = example("refund")
        refund.update(
            id=random_id("re_"),
            amount=amount,
            currency=intent["currency"],
            payment_intent=intent_id,
            charge=intent["latest_charge"],
            created=int(time.time()),
            metadata=string_dict(params.get("metadata")),
            reason=reason,
            status=self.next_refund_status,
        )
        self.refunds[refund["id"]] = refund
        return copy.deepcopy(refund)

    def _get_refund(self, params: dict, refund_id: str) -> dict:
        if refund_id not in self.refunds:
            raise missing("refund", refund_id, "refund")
        return copy.deepcopy(self.refunds[refund_id])

    def _get_payment_intent(self, params: dict, intent_id: str) -> dict:
        if intent_id not in self.payment_intents:
            raise missing("payment_intent", intent_id, "intent")
        return copy.deepcopy(self.payment_intents[intent_id])

    def _get_charge(self, params: dict, charge_id: str) -> dict:
        for intent_id, intent in self.payment_intents.items():
            if intent["latest_charge"] == charge_id:
                return self.charge(intent_id)
        raise missing("charge", charge_id, "charge")

    def _get_event(self, params: dict, event_id: str) -> dict:
        for event in self.events:
            if event.id == event_id:
                return json.loads(event.payload)
        raise missing("event", event_id, "id")
