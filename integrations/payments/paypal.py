"""PayPal Checkout through the Orders v2 and Payments v2 REST APIs, with a small client of our own on `requests`.

PayPal's `paypal-server-sdk` is not used: its base URLs are a class-level table keyed by a closed
`Environment` enum (production or sandbox), so pointing it at `PAYPAL_API_BASE` would mean patching
the library, and it has no webhook verification at all.

Webhooks are verified either offline (CRC32 of the body and SHA256withRSA over
`transmission_id|transmission_time|webhook_id|crc32`, checked against the certificate at
PAYPAL-CERT-URL, whose host must be trusted) or by PayPal's verify-webhook-signature call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import requests
from babel.numbers import get_currency_precision
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import (
    CheckoutRequest,
    CheckoutResult,
    PaymentOutcome,
    PaymentRecord,
    PaymentState,
    ProviderError,
    RefundResult,
    WebhookEvent,
    WebhookSignatureError,
    event_json,
    order_id_from,
)

DEFAULT_CERT_HOSTS = ("api.paypal.com", "api-m.paypal.com")
# PayPal takes these in whole units even where ISO 4217 has decimals (HUF, TWD).
WHOLE_UNIT_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})
# Our languages as `experience_context.locale` takes them: BCP 47, language and region.
PAYPAL_LOCALES = {"en": "en-US", "fr": "fr-FR"}
TOKEN_MARGIN_SECONDS = 60
MAX_CACHED_CERTIFICATES = 16
MAX_CERTIFICATE_BYTES = 64 * 1024
# A webhook's PAYPAL-TRANSMISSION-TIME must be this close to our clock (each delivery, retries too, is a new
# transmission): a replayed or made-up request is refused before any certificate is fetched.
TRANSMISSION_TOLERANCE = timedelta(minutes=10)
SUPPORTED_AUTH_ALGO = "SHA256withRSA"
TRANSMISSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
CERTIFICATE_PATH = re.compile(r"/v1/notifications/certs/[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_CERT_URL_LENGTH = 500
MAX_SIGNATURE_BYTES = 1024

CAPTURE_EVENTS = {
    "PAYMENT.CAPTURE.COMPLETED": PaymentOutcome.PAID,
    "PAYMENT.CAPTURE.PENDING": PaymentOutcome.PROCESSING,
    "PAYMENT.CAPTURE.DENIED": PaymentOutcome.FAILED,
    "PAYMENT.CAPTURE.DECLINED": PaymentOutcome.FAILED,
}
REFUND_EVENTS = {"PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"}
ORDER_APPROVED = "CHECKOUT.ORDER.APPROVED"
CAPTURE_STATUSES = {
    "COMPLETED": PaymentOutcome.PAID,
    "PARTIALLY_REFUNDED": PaymentOutcome.PAID,
    "REFUNDED": PaymentOutcome.PAID,
    "PENDING": PaymentOutcome.PROCESSING,
    "DECLINED": PaymentOutcome.FAILED,
    "FAILED": PaymentOutcome.FAILED,
}
REFUND_STATUSES = {"COMPLETED": "succeeded", "PENDING": "pending", "FAILED": "failed", "CANCELLED": "failed"}


@dataclass(frozen=True)
class RefundNotice:
    """Money given back on a capture, as a PAYMENT.CAPTURE.REFUNDED or .REVERSED event reports it."""

    refund_id: str
    capture_id: str | None
    order_id: int | None
    amount: int | None
    currency: str | None
    status: str


# -- money ---------------------------------------------------------------------------------------------------


def to_paypal_value(amount: int, currency: str) -> str:
    """Minor units (ISO exponent) -> PayPal's decimal string: 2500 EUR -> '25.00', 3000 JPY -> '3000'."""
    currency = currency.upper()
    exponent = get_currency_precision(currency)
    major = Decimal(amount).scaleb(-exponent)
    if currency in WHOLE_UNIT_CURRENCIES:
        if major != major.to_integral_value():
            raise ProviderError(f"PayPal takes {currency} in whole units only")
        return f"{major:.0f}"
    return f"{major:.{exponent}f}"


def from_paypal_value(value: Any, currency: str | None) -> int | None:
    if value is None or not currency:
        return None
    try:
        scaled = Decimal(str(value)).scaleb(get_currency_precision(currency.upper()))
    except (InvalidOperation, ValueError):
        return None
    return int(scaled) if scaled == scaled.to_integral_value() else None


def _amount(money: Mapping | None) -> tuple[int | None, str | None]:
    if not isinstance(money, Mapping):
        return None, None
    currency = money.get("currency_code")
    currency = currency.upper() if isinstance(currency, str) else None
    return from_paypal_value(money.get("value"), currency), currency


# -- PayPal objects in our words ------------------------------------------------------------------------------


def order_state(order: Mapping) -> PaymentState:
    """Read a PayPal order (from the API) as a PaymentState; its last capture decides whether it is paid."""
    units = order.get("purchase_units") or [{}]
    unit = units[0]
    captures = (unit.get("payments") or {}).get("captures") or []
    capture = captures[-1] if captures else None
    if capture is not None:
        outcome = CAPTURE_STATUSES.get(capture.get("status"), PaymentOutcome.PROCESSING)
        amount, currency = _amount(capture.get("amount"))
        custom_id = capture.get("custom_id") or unit.get("custom_id")
    else:
        outcome = PaymentOutcome.EXPIRED if order.get("status") == "VOIDED" else PaymentOutcome.OPEN
        amount, currency = _amount(unit.get("amount"))
        custom_id = unit.get("custom_id")
    return PaymentState(
        provider_ref=order["id"],
        outcome=outcome,
        order_id=order_id_from(custom_id),
        amount=amount,
        currency=currency,
        payment_ref=capture.get("id") if capture else None,
    )


def capture_state(capture: Mapping, event_type: str) -> PaymentState:
    """A capture resource from a PAYMENT.CAPTURE.* event; PayPal names its order in supplementary_data."""
    related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
    amount, currency = _amount(capture.get("amount"))
    return PaymentState(
        provider_ref=related.get("order_id") or "",
        outcome=CAPTURE_EVENTS[event_type],
        order_id=order_id_from(capture.get("custom_id")),
        amount=amount,
        currency=currency,
        payment_ref=capture.get("id"),
    )


def refund_notice(event: WebhookEvent) -> RefundNotice | None:
    """The refund a PAYMENT.CAPTURE.REFUNDED/.REVERSED event speaks of; None for any other event."""
    if event.type not in REFUND_EVENTS:
        return None
    resource = event.raw.get("resource") or {}
    capture_id = None
    for link in resource.get("links") or []:
        if link.get("rel") == "up" and "/captures/" in str(link.get("href", "")):
            capture_id = str(link["href"]).rstrip("/").rsplit("/", 1)[-1]
    amount, currency = _amount(resource.get("amount"))
    return RefundNotice(
        refund_id=str(resource.get("id") or ""),
        capture_id=capture_id,
        order_id=order_id_from(resource.get("custom_id")),
        amount=abs(amount) if amount is not None else None,
        currency=currency,
        status=str(resource.get("status") or ""),
    )


def approval_link(order: Mapping) -> str:
    for link in order.get("links") or []:
        if link.get("rel") in ("payer-action", "approve"):
            return link["href"]
    raise ProviderError("PayPal: the order has no approval link")


# -- the provider ---------------------------------------------------------------------------------------------


class PayPalProvider:
    name = "paypal"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        api_base: str,
        webhook_id: str,
        webhook_verify: str = "offline",
        cert_hosts: tuple[str, ...] | list[str] = DEFAULT_CERT_HOSTS,
        brand_name: str = "",
        timeout: float | tuple[float, float] = (3.0, 10.0),  # requests' (connect, read): PayPal may hang, we don't
    ):
        if webhook_verify not in ("offline", "postback"):
            raise ValueError("PAYPAL_WEBHOOK_VERIFY must be 'offline' or 'postback'")
        self._client_id = client_id
        self._client_secret = client_secret
        self._api_base = api_base.rstrip("/")
        self._webhook_id = webhook_id
        self._webhook_verify = webhook_verify
        self._cert_hosts = frozenset(host.strip().lower() for host in cert_hosts if host.strip())
        self._brand_name = brand_name[:127]
        self._timeout = timeout
        self._http = requests.Session()
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._certificates: dict[str, x509.Certificate] = {}

    # HTTP ------------------------------------------------------------------------------------------------

    def _access_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if self._token and not renew and time.monotonic() < self._token_expires:
                return self._token
            try:
                response = self._http.post(
                    self._api_base + "/v1/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=(self._client_id, self._client_secret),
                    headers={"Accept": "application/json"},
                    timeout=self._timeout,
                )
            except requests.RequestException as error:
                raise ProviderError(f"PayPal: {error}", transient=True) from error
            if response.status_code != 200:
                raise _error(response)
            body = response.json()
            self._token = body["access_token"]
            self._token_expires = time.monotonic() + max(int(body.get("expires_in", 0)) - TOKEN_MARGIN_SECONDS, 0)
            return self._token

    def _call(
        self, method: str, path: str, body: Mapping | None = None, request_id: str | None = None
    ) -> tuple[int, dict]:
        """One API call with a bearer token (renewed once on 401). Returns the status and the JSON body."""
        headers = {"Content-Type": "application/json", "Accept": "application/json", "Prefer": "return=representation"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        for attempt in range(2):
            headers["Authorization"] = f"Bearer {self._access_token(renew=attempt > 0)}"
            try:
                response = self._http.request(
                    method,
                    self._api_base + path,
                    data=json.dumps(body) if body is not None else None,
                    headers=headers,
                    timeout=self._timeout,
                )
            except requests.RequestException as error:
                raise ProviderError(f"PayPal: {error}", transient=True) from error
            if response.status_code != 401:
                break
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            payload = {}
        return response.status_code, payload if isinstance(payload, dict) else {}

    def _expect(self, method: str, path: str, body: Mapping | None = None, request_id: str | None = None) -> dict:
        status, payload = self._call(method, path, body, request_id)
        if status >= 300:
            raise _error_from(status, payload)
        return payload

    # PaymentProvider -----------------------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        our_id = str(request.order_id)
        # invoice_id must be unique per PayPal account, even across databases: the idempotency key has a random part.
        unique = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:12]
        experience = {
            "return_url": request.success_url,
            "cancel_url": request.cancel_url,
            "user_action": "PAY_NOW",
            "shipping_preference": "NO_SHIPPING",
        }
        if request.locale in PAYPAL_LOCALES:
            experience["locale"] = PAYPAL_LOCALES[request.locale]
        if self._brand_name:
            experience["brand_name"] = self._brand_name
        body = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": f"order-{our_id}",
                    "custom_id": our_id,
                    "invoice_id": f"{our_id}-{unique}",
                    "description": request.description[:127],
                    "amount": {
                        "currency_code": request.currency.upper(),
                        "value": to_paypal_value(request.amount, request.currency),
                    },
                }
            ],
            "payment_source": {"paypal": {"email_address": request.email, "experience_context": experience}},
        }
        order = self._expect("POST", "/v2/checkout/orders", body, request_id=request.idempotency_key)
        return CheckoutResult(provider_ref=order["id"], redirect_url=approval_link(order))

    def get_payment(self, provider_ref: str) -> PaymentState:
        return order_state(self._expect("GET", f"/v2/checkout/orders/{_segment(provider_ref)}"))

    def cancel_checkout(self, provider_ref: str) -> PaymentState:
        """PayPal has no call to close a CAPTURE order: one we never capture simply moves no money.

        So an order without a capture counts as expired here; we capture only orders still pending on our side.
        """
        state = self.get_payment(provider_ref)
        if state.outcome == PaymentOutcome.OPEN:
            return PaymentState(
                state.provider_ref, PaymentOutcome.EXPIRED, state.order_id, state.amount, state.currency
            )
        return state

    def capture(self, provider_ref: str) -> PaymentState:
        """Capture an approved order. Idempotent: a repeated capture (ORDER_ALREADY_CAPTURED) reads the order."""
        status, payload = self._call("POST", f"/v2/checkout/orders/{_segment(provider_ref)}/capture", {})
        if status == 422 and "ORDER_ALREADY_CAPTURED" in _issues(payload):
            return self.get_payment(provider_ref)
        if status >= 300:
            raise _error_from(status, payload)
        return order_state(payload)

    def refund(self, payment_ref: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        body = {"amount": {"currency_code": currency.upper(), "value": to_paypal_value(amount, currency)}}
        refund = self._expect(
            "POST", f"/v2/payments/captures/{_segment(payment_ref)}/refund", body, request_id=idempotency_key
        )
        return RefundResult(
            provider_refund_id=refund["id"], status=REFUND_STATUSES.get(refund.get("status"), "pending")
        )

    def payment_record(self, payment_ref: str) -> PaymentRecord:
        capture = self._expect("GET", f"/v2/payments/captures/{_segment(payment_ref)}")
        status = capture.get("status")
        amount, currency = _amount(capture.get("amount"))
        full = status == "REFUNDED"
        return PaymentRecord(
            payment_ref=payment_ref,
            paid=status in {"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"},
            amount=amount,
            currency=currency,
            refunded=amount if full else (0 if status == "COMPLETED" else None),
            fully_refunded=full,
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        headers = {key.lower(): value for key, value in headers.items()}
        if not self._webhook_id:
            raise WebhookSignatureError("PAYPAL_WEBHOOK_ID is not set: no PayPal webhook can be verified")
        raw = event_json(body, "event_type", "PayPal")
        if self._webhook_verify == "postback":
            self._verify_postback(raw, headers)
        else:
            self._verify_offline(body, headers)
        return self.read_webhook(body)

    def read_webhook(self, body: bytes) -> WebhookEvent:
        raw = event_json(body, "event_type", "PayPal")
        event_type = raw["event_type"]
        resource = raw.get("resource") if isinstance(raw.get("resource"), dict) else {}
        payment = None
        try:
            if event_type in CAPTURE_EVENTS:
                payment = capture_state(resource, event_type)
            elif event_type == ORDER_APPROVED:
                payment = order_state(resource)
        except (KeyError, TypeError, AttributeError) as error:
            raise WebhookSignatureError(f"malformed {event_type} resource") from error
        return WebhookEvent(event_id=raw["id"], type=event_type, payment=payment, raw=raw)

    # Webhook signatures ------------------------------------------------------------------------------------

    # (connect, read) seconds for a certificate download; with the size cap and a whole-download deadline a slow
    # or endless answer holds a worker for a few seconds at most.
    certificate_timeout: tuple[float, float] = (3.0, 4.0)

    def _transmission(self, headers: Mapping[str, str], *, offline: bool) -> dict[str, str]:
        """The PAYPAL-* transmission headers, checked for everything that costs nothing to check.

        Runs before any call goes out (a certificate download, or PayPal's verify call), so a forged webhook that
        is not even well-formed, is stale, or names a certificate PayPal would not serve costs us no request.
        """
        names = {
            "transmission_id": "paypal-transmission-id",
            "transmission_time": "paypal-transmission-time",
            "transmission_sig": "paypal-transmission-sig",
            "cert_url": "paypal-cert-url",
            "auth_algo": "paypal-auth-algo",
        }
        values = {key: headers.get(header, "") for key, header in names.items()}
        missing = [names[key] for key, value in values.items() if not value]
        if missing:
            raise WebhookSignatureError("missing headers: " + ", ".join(header.upper() for header in missing))
        if values["auth_algo"] != SUPPORTED_AUTH_ALGO:
            raise WebhookSignatureError(f"unsupported PAYPAL-AUTH-ALGO {values['auth_algo'][:40]}")
        if not TRANSMISSION_ID.fullmatch(values["transmission_id"]):
            raise WebhookSignatureError("malformed PAYPAL-TRANSMISSION-ID")
        sent_at = _instant(values["transmission_time"])
        if sent_at is None:
            raise WebhookSignatureError("malformed PAYPAL-TRANSMISSION-TIME")
        if abs(datetime.now(UTC) - sent_at) > TRANSMISSION_TOLERANCE:
            raise WebhookSignatureError("PAYPAL-TRANSMISSION-TIME is not recent: a replayed or forged request")
        if _signature_bytes(values["transmission_sig"]) is None:
            raise WebhookSignatureError("malformed PAYPAL-TRANSMISSION-SIG")
        if offline:
            self._check_cert_url(values["cert_url"])
        return values

    def _check_cert_url(self, url: str) -> None:
        """Only PayPal's certificate path on a host of PAYPAL_CERT_HOSTS, over https, with nothing else in the URL."""
        try:
            parts = urlsplit(url) if len(url) <= MAX_CERT_URL_LENGTH else None
        except ValueError:
            parts = None
        host = ((parts.hostname if parts else "") or "").lower()
        if parts is None or host not in self._cert_hosts:
            raise WebhookSignatureError(f"certificate host {host or '?'} is not trusted (PAYPAL_CERT_HOSTS)")
        if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(host)):
            raise WebhookSignatureError("the certificate must be fetched over https")
        if (
            parts.username
            or parts.password
            or parts.query
            or parts.fragment
            or not CERTIFICATE_PATH.fullmatch(parts.path)
        ):
            raise WebhookSignatureError("PAYPAL-CERT-URL is not the address of a PayPal certificate")

    def _verify_offline(self, body: bytes, headers: Mapping[str, str]) -> None:
        sent = self._transmission(headers, offline=True)
        message = f"{sent['transmission_id']}|{sent['transmission_time']}|{self._webhook_id}|{zlib.crc32(body)}"
        certificate = self._certificate(sent["cert_url"])
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookSignatureError("the PayPal certificate does not hold an RSA key")
        signature = _signature_bytes(sent["transmission_sig"])
        try:
            key.verify(signature, message.encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as error:
            raise WebhookSignatureError("PAYPAL-TRANSMISSION-SIG does not match this body") from error

    def _certificate(self, url: str) -> x509.Certificate:
        """The certificate at `url` (already checked), from a small cache of the most recently used ones."""
        with self._lock:
            certificate = self._certificates.pop(url, None)
            if certificate is not None:
                self._certificates[url] = certificate  # most recently used last: dicts keep insertion order
        if certificate is None:
            certificate = self._download_certificate(url)
            with self._lock:
                self._certificates.pop(url, None)
                while len(self._certificates) >= MAX_CACHED_CERTIFICATES:
                    self._certificates.pop(next(iter(self._certificates)))
                self._certificates[url] = certificate
        now = datetime.now(UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise WebhookSignatureError("the PayPal certificate is not valid now")
        return certificate

    def _download_certificate(self, url: str) -> x509.Certificate:
        connect, read = self.certificate_timeout
        deadline = time.monotonic() + connect + read
        try:
            with self._http.get(url, timeout=(connect, read), stream=True, allow_redirects=False) as response:
                if response.status_code != 200:
                    raise WebhookSignatureError(f"could not load the certificate: HTTP {response.status_code}")
                content = b""
                for chunk in response.iter_content(8192):
                    content += chunk
                    if len(content) > MAX_CERTIFICATE_BYTES or time.monotonic() > deadline:
                        raise WebhookSignatureError("could not load the certificate: too large or too slow")
            return x509.load_pem_x509_certificate(content)
        except (requests.RequestException, ValueError) as error:
            raise WebhookSignatureError(f"could not load the certificate: {error}") from error

    def _verify_postback(self, raw: dict, headers: Mapping[str, str]) -> None:
        body = {**self._transmission(headers, offline=False), "webhook_id": self._webhook_id, "webhook_event": raw}
        try:
            result = self._expect("POST", "/v1/notifications/verify-webhook-signature", body)
        except ProviderError as error:
            raise WebhookSignatureError(f"PayPal could not verify the signature: {error}") from error
        if result.get("verification_status") != "SUCCESS":
            raise WebhookSignatureError("PayPal says the signature does not match")


def _instant(value: str) -> datetime | None:
    """An Internet date-time with its offset (PAYPAL-TRANSMISSION-TIME), or None."""
    if len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _signature_bytes(value: str) -> bytes | None:
    if len(value) > MAX_SIGNATURE_BYTES * 2:
        return None
    try:
        signature = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return signature if 0 < len(signature) <= MAX_SIGNATURE_BYTES else None


def _segment(value: str) -> str:
    """Ids go into URL paths: refuse anything that is not a plain PayPal id."""
    if not value or not value.replace("-", "").replace("_", "").isalnum():
        raise ProviderError(f"PayPal: {value!r} is not a PayPal id")
    return value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _issues(payload: Mapping) -> list[str]:
    return [str(detail.get("issue")) for detail in payload.get("details") or [] if isinstance(detail, Mapping)]


def _error(response: requests.Response) -> ProviderError:
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    return _error_from(response.status_code, payload if isinstance(payload, dict) else {})


def _error_from(status: int, payload: Mapping) -> ProviderError:
    name = payload.get("name") or payload.get("error") or f"HTTP {status}"
    details = "; ".join(
        f"{detail.get('issue')}: {detail.get('description', '')}".rstrip(": ")
        for detail in payload.get("details") or []
        if isinstance(detail, Mapping)
    )
    message = details or payload.get("message") or payload.get("error_description") or ""
    return ProviderError(f"PayPal: {name} {message}".strip(), transient=status >= 500 or status == 429)
