"""A local fake of PayPal's REST API (OAuth2, Orders v2, Payments v2, webhook verification) over real HTTP.

Webhooks are signed the way PayPal signs them: SHA256withRSA over
``transmission_id|transmission_time|webhook_id|crc32(body)`` with a self-made test certificate that the
fake serves at a certificate URL on 127.0.0.1 (trust it with ``PAYPAL_CERT_HOSTS=127.0.0.1``).
Scenario helpers change state the way a buyer or PayPal would and return the webhook PayPal would send.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import secrets
import string
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.local_server import LocalServer

DEFAULT_CLIENT_ID = "fake-paypal-client"
DEFAULT_CLIENT_SECRET = "fake-paypal-secret"
DEFAULT_WEBHOOK_ID = "1JE4291016473214C"
TOKEN_SECONDS = 32400
# PayPal rejects decimals for these; every other supported currency takes two.
NO_DECIMALS = {"HUF", "JPY", "TWD"}
# The pattern PayPal's Orders v2 reference gives `experience_context.locale`: a language, a script, a region.
LOCALE = re.compile(r"[a-z]{2}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?")
SUPPORTED_CURRENCIES = {
    "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN", "TWD",
    "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD",
}  # fmt: skip

ROUTES = Map(
    [
        Rule("/v1/oauth2/token", methods=["POST"], endpoint="token"),
        Rule("/v2/checkout/orders", methods=["POST"], endpoint="create_order"),
        Rule("/v2/checkout/orders/<order_id>", methods=["GET"], endpoint="get_order"),
        Rule("/v2/checkout/orders/<order_id>/capture", methods=["POST"], endpoint="capture_order"),
        Rule("/v2/payments/captures/<capture_id>", methods=["GET"], endpoint="get_capture"),
        Rule("/v2/payments/captures/<capture_id>/refund", methods=["POST"], endpoint="refund_capture"),
        Rule("/v2/payments/refunds/<refund_id>", methods=["GET"], endpoint="get_refund"),
        Rule("/v1/notifications/verify-webhook-signature", methods=["POST"], endpoint="verify_signature"),
        Rule("/v1/notifications/certs/<cert_name>", methods=["GET"], endpoint="certificate"),
        Rule("/checkoutnow", methods=["GET"], endpoint="checkout_page"),
    ]
)


def random_id(length: int = 17) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeError(Exception):
    """An error body in PayPal's shape: name, message, debug_id, details[{issue, description}]."""

    def __init__(self, status: int, name: str, message: str, issue: str | None = None, description: str = ""):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"name": name, "message": message, "debug_id": random_id(13).lower()}
        if issue:
            self.body["details"] = [{"issue": issue, "description": description or message}]
            self.body["links"] = [
                {
                    "href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}",
                    "rel": "information_link",
                }
            ]

    def response(self) -> Response:
        return json_response(self.body, self.status)


def unprocessable(issue: str, description: str) -> FakeError:
    return FakeError(
        422,
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed business validation.",
        issue,
        description,
    )


def invalid_request(issue: str, description: str) -> FakeError:
    return FakeError(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates schema.",
                     issue, description)  # fmt: skip


def not_found(kind: str) -> FakeError:
    description = f"Specified resource ID does not exist. Please check the resource ID and try again. ({kind})"
    return FakeError(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.", "INVALID_RESOURCE_ID",
                     description)  # fmt: skip


def json_response(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status, mimetype="application/json")


def check_value(money: Any, where: str) -> tuple[str, Decimal]:
    if not isinstance(money, dict) or not money.get("currency_code") or money.get("value") is None:
        raise invalid_request("MISSING_REQUIRED_PARAMETER", f"{where} needs currency_code and value.")
    currency = money["currency_code"]
    if currency not in SUPPORTED_CURRENCIES:
        raise unprocessable("CURRENCY_NOT_SUPPORTED", "Currency code is not currently supported.")
    text = str(money["value"])
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise invalid_request("INVALID_PARAMETER_VALUE", f"{where}.value is not a number.") from None
    decimals = len(text.partition(".")[2])
    if currency in NO_DECIMALS and decimals:
        raise unprocessable("DECIMALS_NOT_SUPPORTED", "Currency does not support decimals.")
    if decimals > 2 or value <= 0:
        raise invalid_request("DECIMAL_PRECISION", f"{where}.value must be positive with at most 2 decimals.")
    return currency, value


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class SignedWebhook:
    """A webhook event as PayPal delivers it: the JSON body and its PAYPAL-* transmission headers."""

    id: str
    event_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def post(self, url: str) -> requests.Response:
        return requests.post(url, data=self.body, headers=self.headers, timeout=10)

    def json(self) -> dict:
        return json.loads(self.body)


def _self_signed(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    moment = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - timedelta(days=1))
        .not_valid_after(moment + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


class FakePayPal(LocalServer):
    name = "fake-paypal"

    def __init__(
        self,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        webhook_id: str = DEFAULT_WEBHOOK_ID,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_id = webhook_id
        self.base_url = ""
        self._key, self._certificate = _self_signed("messageverificationcerts.paypal.com")
        self.cert_name = f"CERT-360caa42-fca2a594-{random_id(8).lower()}"
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every order, token, request id and invoice id, as a new PayPal account would; answer at once.

        The signing certificate stays: it is PayPal's, not the account's.
        """
        super().reset()
        with self._lock:
            self.requests: list[RecordedRequest] = []
            self.orders: dict[str, dict] = {}
            self.captures: dict[str, dict] = {}
            self.refunds: dict[str, dict] = {}
            self.tokens: dict[str, datetime] = {}
            self.token_requests = 0
            self.request_ids: list[str] = []
            self.fail_next: list[tuple] = []  # (status, name, message[, issue]) for the next API calls
            self.next_capture_status = "COMPLETED"
            self.certificate_downloads = 0
            self.certificate_delay = 0.0  # seconds the certificate download waits before answering (a slow host)
            self.other_cert_names: set[str] = set()  # more addresses that serve the certificate (cache tests)
            self._replays: dict[tuple[str, str], tuple[int, str]] = {}
            self._invoice_ids: set[str] = set()

    @property
    def cert_url(self) -> str:
        return f"{self.base_url}/v1/notifications/certs/{self.cert_name}"

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    # Scenario helpers ------------------------------------------------------------------------------------

    def approve(self, order_id: str, payer_id: str | None = None) -> tuple[str, SignedWebhook]:
        """The buyer approves on PayPal's page: returns where PayPal sends their browser, and the webhook."""
        with self._lock:
            order = self.orders[order_id]
            if order["status"] not in ("CREATED", "PAYER_ACTION_REQUIRED", "APPROVED"):
                raise AssertionError(f"order {order_id} is {order['status']}: it cannot be approved")
            payer_id = payer_id or random_id(13)
            order["status"] = "APPROVED"
            order["payer"] = {
                "name": {"given_name": "Bo", "surname": "Buyer"},
                "email_address": order["_email"] or "buyer@example.com",
                "payer_id": payer_id,
                "address": {"country_code": "FR"},
            }
            order["update_time"] = now_iso()
            experience = order["_experience"]
            separator = "&" if "?" in experience["return_url"] else "?"
            back = experience["return_url"] + separator + urlencode({"token": order_id, "PayerID": payer_id})
            return back, self.webhook("CHECKOUT.ORDER.APPROVED", "checkout-order", self._public(order))

    def cancel_url(self, order_id: str) -> str:
        """Where PayPal sends a buyer who clicks "Cancel and return"."""
        experience = self.orders[order_id]["_experience"]
        separator = "&" if "?" in experience["cancel_url"] else "?"
        return experience["cancel_url"] + separator + urlencode({"token": order_id})

    def capture_webhook(self, capture_id: str) -> SignedWebhook:
        """The PAYMENT.CAPTURE.* event PayPal sends for a capture's current status."""
        with self._lock:
            capture = self.captures[capture_id]
            event_type = {
                "COMPLETED": "PAYMENT.CAPTURE.COMPLETED",
                "PENDING": "PAYMENT.CAPTURE.PENDING",
                "DECLINED": "PAYMENT.CAPTURE.DENIED",
            }[capture["status"]]
            return self.webhook(event_type, "capture", self._capture_resource(capture))

    def settle_capture(self, capture_id: str, status: str = "COMPLETED") -> SignedWebhook:
        """A pending capture clears (COMPLETED) or is denied (DECLINED)."""
        with self._lock:
            capture = self.captures[capture_id]
            capture["status"] = status
            capture.pop("status_details", None)
            if status == "DECLINED":
                capture["status_details"] = {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"}
            capture["update_time"] = now_iso()
            return self.capture_webhook(capture_id)

    def refund_webhook(self, refund_id: str, event_type: str = "PAYMENT.CAPTURE.REFUNDED") -> SignedWebhook:
        with self._lock:
            return self.webhook(event_type, "refund", copy.deepcopy(self.refunds[refund_id]))

    def refund_from_dashboard(self, capture_id: str, event_type: str = "PAYMENT.CAPTURE.REFUNDED") -> SignedWebhook:
        """The seller refunds in full from PayPal's site (or PayPal reverses the payment)."""
        with self._lock:
            capture = self.captures[capture_id]
            refund = self._new_refund(capture, dict(capture["amount"]))
            return self.refund_webhook(refund["id"], event_type)

    def capture_of(self, order_id: str) -> dict | None:
        with self._lock:
            captures = self.orders[order_id]["purchase_units"][0].get("payments", {}).get("captures", [])
            return copy.deepcopy(self.captures[captures[-1]["id"]]) if captures else None

    def webhook(self, event_type: str, resource_type: str, resource: dict, *, key: Any = None) -> SignedWebhook:
        event_id = "WH-" + random_id(17)
        events = f"{self.base_url}/v1/notifications/webhooks-events/{event_id}"
        event = {
            "id": event_id,
            "event_version": "1.0",
            "create_time": now_iso(),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": f"{event_type.replace('.', ' ').title()}",
            "resource": resource,
            "links": [
                {"href": events, "rel": "self", "method": "GET"},
                {"href": f"{events}/resend", "rel": "resend", "method": "POST"},
            ],
        }
        return self.sign(json.dumps(event, indent=1).encode(), key=key)

    def sign(
        self, body: bytes, *, key: Any = None, cert_url: str | None = None, sent_at: datetime | None = None
    ) -> SignedWebhook:
        """Sign a body like PayPal: CRC32 of the body, then SHA256withRSA over the transmission string."""
        event = json.loads(body)
        transmission_id = str(uuid.uuid4())
        transmission_time = (sent_at or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
        message = f"{transmission_id}|{transmission_time}|{self.webhook_id}|{zlib.crc32(body)}"
        signature = (key or self._key).sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "Content-Type": "application/json",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
            "PAYPAL-CERT-URL": cert_url or self.cert_url,
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }
        return SignedWebhook(event["id"], event["event_type"], body, headers)

    def forged(self, webhook: SignedWebhook) -> SignedWebhook:
        """The same event signed with a key that is not PayPal's, pointing at PayPal's certificate."""
        other, _certificate = _self_signed("attacker.example")
        return self.sign(webhook.body, key=other)

    # HTTP side ---------------------------------------------------------------------------------------------

    def _wsgi_app(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        if self.certificate_delay and request.path.startswith("/v1/notifications/certs/"):
            time.sleep(self.certificate_delay)  # outside the lock: the rest of the fake keeps answering
        raw = request.get_data(as_text=True)
        try:
            body = json.loads(raw) if raw and request.mimetype == "application/json" else dict(request.form)
        except ValueError:
            body = None
        request_id = request.headers.get("PayPal-Request-Id")
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.path, dict(request.headers), body))
            if request_id:
                self.request_ids.append(request_id)
            try:
                response = self._dispatch(request, body, request_id)
            except FakeError as error:
                response = error.response()
        response.headers["Paypal-Debug-Id"] = random_id(13).lower()
        return response(environ, start_response)

    def _dispatch(self, request: Request, body: Any, request_id: str | None) -> Response:
        try:
            endpoint, args = ROUTES.bind_to_environ(request.environ).match()
        except HTTPException:
            raise FakeError(404, "NOT_FOUND", f"No route for {request.method} {request.path}") from None
        if endpoint == "certificate":
            self.certificate_downloads += 1
            if args["cert_name"] != self.cert_name and args["cert_name"] not in self.other_cert_names:
                raise not_found("certificate")
            return Response(self._certificate.public_bytes(serialization.Encoding.PEM), mimetype="text/plain")
        if endpoint == "checkout_page":
            return self._checkout_page(request.args.get("token", ""))
        if endpoint == "token":
            return self._token(request)
        if self.fail_next:
            status, name, message, *issue = self.fail_next.pop(0)
            raise FakeError(status, name, message, issue[0] if issue else None)
        self._authenticate(request)
        if body is None:
            raise invalid_request("MALFORMED_REQUEST_JSON", "The request JSON is not well formed.")
        handler = getattr(self, f"_{endpoint}")
        if request.method != "POST" or not request_id:
            status, payload = handler(body, **args)
            return json_response(payload, status)
        replay = self._replays.get((request.path, request_id))
        if replay is not None:
            return Response(replay[1], 200, mimetype="application/json")
        status, payload = handler(body, **args)
        text = json.dumps(payload)
        self._replays[(request.path, request_id)] = (status, text)
        return Response(text, status, mimetype="application/json")

    def _token(self, request: Request) -> Response:
        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or (auth.username, auth.password) != (self.client_id, self.client_secret)
        ):
            return json_response({"error": "invalid_client", "error_description": "Client Authentication failed"}, 401)
        if request.form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}, 400)
        self.token_requests += 1
        token = "A21AA" + secrets.token_urlsafe(48)
        self.tokens[token] = datetime.now(UTC) + timedelta(seconds=TOKEN_SECONDS)
        return json_response(
            {
                "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/payments/refund",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": TOKEN_SECONDS,
                "nonce": f"{now_iso()}{secrets.token_urlsafe(16)}",
            }
        )

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        expiry = self.tokens.get(token)
        if expiry is None or expiry < datetime.now(UTC):
            raise FakeError(401, "AUTHENTICATION_FAILURE", "Authentication failed due to invalid authentication "
                            "credentials or a missing Authorization header.")  # fmt: skip

    def _public(self, order: dict) -> dict:
        return {key: copy.deepcopy(value) for key, value in order.items() if not key.startswith("_")}

    def _order_links(self, order_id: str, status: str) -> list[dict]:
        links = [{"href": f"{self.base_url}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"}]
        if status in ("PAYER_ACTION_REQUIRED", "CREATED"):
            links.append(
                {"href": f"{self.base_url}/checkoutnow?token={order_id}", "rel": "payer-action", "method": "GET"}
            )
        if status == "APPROVED":
            links.append(
                {"href": f"{self.base_url}/v2/checkout/orders/{order_id}/capture", "rel": "capture", "method": "POST"}
            )
        return links

    def _create_order(self, body: dict) -> tuple[int, dict]:
        if body.get("intent") not in ("CAPTURE", "AUTHORIZE"):
            raise invalid_request("INVALID_PARAMETER_VALUE", "intent must be CAPTURE or AUTHORIZE.")
        units = body.get("purchase_units")
        if not isinstance(units, list) or len(units) != 1:
            raise invalid_request("MISSING_REQUIRED_PARAMETER", "This fake takes exactly one purchase unit.")
        unit = copy.deepcopy(units[0])
        check_value(unit.get("amount"), "purchase_units[0].amount")
        for name in ("custom_id", "invoice_id", "description"):
            if len(str(unit.get(name, ""))) > 127:
                raise invalid_request("INVALID_STRING_LENGTH", f"purchase_units[0].{name} is longer than 127.")
        invoice_id = unit.get("invoice_id")
        if invoice_id and invoice_id in self._invoice_ids:
            raise unprocessable("DUPLICATE_INVOICE_ID", "Duplicate Invoice ID detected.")
        paypal = (body.get("payment_source") or {}).get("paypal") or {}
        experience = paypal.get("experience_context") or {}
        if not experience.get("return_url") or not experience.get("cancel_url"):
            raise invalid_request("MISSING_REQUIRED_PARAMETER", "return_url and cancel_url are required.")
        if "locale" in experience and not LOCALE.fullmatch(str(experience["locale"])):
            raise invalid_request("INVALID_PARAMETER_SYNTAX", "experience_context.locale is not a BCP 47 language tag.")
        if invoice_id:
            self._invoice_ids.add(invoice_id)
        order_id = random_id()
        unit.setdefault("reference_id", "default")
        unit["payee"] = {"email_address": "seller@example.com", "merchant_id": "C7CYMKZDG8D6E"}
        status = "PAYER_ACTION_REQUIRED"
        order = {
            "id": order_id,
            "intent": body["intent"],
            "status": status,
            "payment_source": {"paypal": {}},
            "purchase_units": [unit],
            "create_time": now_iso(),
            "links": self._order_links(order_id, status),
            "_experience": experience,
            "_email": paypal.get("email_address"),
        }
        self.orders[order_id] = order
        return 201, self._public(order)

    def _get_order(self, body: Any, order_id: str) -> tuple[int, dict]:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found("order")
        order["links"] = self._order_links(order_id, order["status"])
        return 200, self._public(order)

    def _capture_order(self, body: Any, order_id: str) -> tuple[int, dict]:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found("order")
        if order["status"] == "COMPLETED":
            raise unprocessable(
                "ORDER_ALREADY_CAPTURED",
                "Order already captured.If 'intent=CAPTURE' only one capture per order is allowed.",
            )
        if order["status"] != "APPROVED":
            raise unprocessable(
                "ORDER_NOT_APPROVED",
                "Payer has not yet approved the Order for payment. Please redirect the payer to the "
                "'rel':'approve' url returned as part of the HATEOAS links within the Create Order call "
                "or provide a valid payment_source in the request.",
            )
        unit = order["purchase_units"][0]
        status = self.next_capture_status
        capture_id = random_id()
        capture = {
            "id": capture_id,
            "status": status,
            "amount": dict(unit["amount"]),
            "final_capture": True,
            "seller_protection": {"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED"]},
            "custom_id": unit.get("custom_id"),
            "invoice_id": unit.get("invoice_id"),
            "create_time": now_iso(),
            "update_time": now_iso(),
            "links": [
                {"href": f"{self.base_url}/v2/payments/captures/{capture_id}", "rel": "self", "method": "GET"},
                {
                    "href": f"{self.base_url}/v2/payments/captures/{capture_id}/refund",
                    "rel": "refund",
                    "method": "POST",
                },
                {"href": f"{self.base_url}/v2/checkout/orders/{order_id}", "rel": "up", "method": "GET"},
            ],
            "_order_id": order_id,
        }
        if status == "PENDING":
            capture["status_details"] = {"reason": "PENDING_REVIEW"}
        elif status == "DECLINED":
            capture["status_details"] = {"reason": "DECLINED_BY_RISK_FRAUD_FILTERS"}
        self.captures[capture_id] = capture
        unit["payments"] = {"captures": [self._public(capture)]}
        order["status"] = "COMPLETED" if status != "DECLINED" else "APPROVED"
        order["update_time"] = now_iso()
        order["links"] = self._order_links(order_id, order["status"])
        return 201, self._public(order)

    def _capture_resource(self, capture: dict) -> dict:
        resource = self._public(capture)
        resource["supplementary_data"] = {"related_ids": {"order_id": capture["_order_id"]}}
        return resource

    def _get_capture(self, body: Any, capture_id: str) -> tuple[int, dict]:
        capture = self.captures.get(capture_id)
        if capture is None:
            raise not_found("capture")
        return 200, self._public(capture)

    def refunded_amount(self, capture_id: str) -> Decimal:
        return sum(
            (
                Decimal(refund["amount"]["value"])
                for refund in self.refunds.values()
                if refund["_capture_id"] == capture_id
            ),
            Decimal(0),
        )

    def _new_refund(self, capture: dict, amount: dict) -> dict:
        refund_id = random_id()
        refund = {
            "id": refund_id,
            "amount": amount,
            "status": "COMPLETED",
            "custom_id": capture.get("custom_id"),
            "invoice_id": capture.get("invoice_id"),
            "seller_payable_breakdown": {"gross_amount": amount, "net_amount": amount},
            "create_time": now_iso(),
            "update_time": now_iso(),
            "links": [
                {"href": f"{self.base_url}/v2/payments/refunds/{refund_id}", "rel": "self", "method": "GET"},
                {"href": f"{self.base_url}/v2/payments/captures/{capture['id']}", "rel": "up", "method": "GET"},
            ],
            "_capture_id": capture["id"],
        }
        self.refunds[refund_id] = refund
        total = Decimal(capture["amount"]["value"])
        capture["status"] = "REFUNDED" if self.refunded_amount(capture["id"]) >= total else "PARTIALLY_REFUNDED"
        return refund

    def _refund_capture(self, body: dict, capture_id: str) -> tuple[int, dict]:
        capture = self.captures.get(capture_id)
        if capture is None:
            raise not_found("capture")
        if capture["status"] == "REFUNDED":
            raise unprocessable("CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded.")
        if capture["status"] not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            raise unprocessable("REFUND_NOT_ALLOWED", "Refund cannot be issued for this capture.")
        amount = body.get("amount") or dict(capture["amount"])
        currency, value = check_value(amount, "amount")
        if currency != capture["amount"]["currency_code"]:
            raise unprocessable("REFUND_CURRENCY_MISMATCH", "Refund must be in the same currency as the capture.")
        if value > Decimal(capture["amount"]["value"]) - self.refunded_amount(capture_id):
            raise unprocessable("REFUND_AMOUNT_EXCEEDED", "The refund amount must be less than or equal to the "
                                "capture amount that has not yet been refunded.")  # fmt: skip
        refund = self._new_refund(capture, {"currency_code": currency, "value": str(amount["value"])})
        return 201, self._public(refund)

    def _get_refund(self, body: Any, refund_id: str) -> tuple[int, dict]:
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise not_found("refund")
        return 200, self._public(refund)

    def _verify_signature(self, body: dict) -> tuple[int, dict]:
        required = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id",
                    "webhook_event")  # fmt: skip
        missing = [name for name in required if not body.get(name)]
        if missing:
            raise invalid_request("MISSING_REQUIRED_PARAMETER", f"Missing: {', '.join(missing)}.")
        status = "FAILURE"
        if body["webhook_id"] == self.webhook_id and body["cert_url"] == self.cert_url:
            # PayPal checks against the event as it sent it; this fake re-serialises the parsed event it gets.
            event = json.dumps(body["webhook_event"], indent=1).encode()
            message = f"{body['transmission_id']}|{body['transmission_time']}|{self.webhook_id}|{zlib.crc32(event)}"
            try:
                self._certificate.public_key().verify(
                    base64.b64decode(body["transmission_sig"]), message.encode(), padding.PKCS1v15(), hashes.SHA256()
                )
                status = "SUCCESS"
            except Exception:  # noqa: BLE001 - any failure to verify is a FAILURE answer
                status = "FAILURE"
        return 200, {"verification_status": status}

    def _checkout_page(self, order_id: str) -> Response:
        order = self.orders.get(order_id)
        if order is None:
            return Response("<!doctype html><title>Not found</title><h1>Not found</h1>", 404, mimetype="text/html")
        amount = order["purchase_units"][0]["amount"]
        page = (
            "<!doctype html><title>Fake PayPal</title><h1>Fake PayPal checkout</h1>"
            f"<p>{html.escape(order_id)}: {html.escape(amount['value'])} {html.escape(amount['currency_code'])} "
            f"({html.escape(order['status'])})</p>"
        )
        return Response(page, mimetype="text/html")
