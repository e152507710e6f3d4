"""Stripe Checkout through the official library, pointed at `api_base` (a local fake in tests)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import requests
import stripe
from requests.adapters import HTTPAdapter

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

CHECKOUT_EVENTS = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
}

REFUND_STATUSES = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}  # else "pending"
DISPUTE_EVENTS = {"charge.dispute.created", "charge.dispute.closed"}
# Our languages as Checkout Session's `locale` spells them.
STRIPE_LOCALES = {"en": "en", "fr": "fr"}
CONNECTIONS_KEPT = 64  # to Stripe, per process: as many as a worker's threads can have waiting at once


@dataclass(frozen=True)
class ChargeRefundNotice:
    """`charge.refunded`: how much of a charge is back with the card holder, in total so far."""

    payment_ref: str | None  # the PaymentIntent, our `Order.payment_ref`
    order_id: int | None
    amount_refunded: int
    currency: str | None


@dataclass(frozen=True)
class StripeRefundNotice:
    """`refund.updated`: one refund moved on (pending -> succeeded, or failed later)."""

    refund_id: str
    payment_ref: str | None
    amount: int | None
    currency: str | None
    status: str  # "pending", "succeeded" or "failed"


@dataclass(frozen=True)
class DisputeNotice:
    """`charge.dispute.created` / `.closed`."""

    dispute_id: str
    payment_ref: str | None
    amount: int | None
    currency: str | None
    reason: str
    status: str
    closed: bool

    @property
    def won(self) -> bool:
        return self.status == "won"


def _upper(value) -> str | None:
    return value.upper() if isinstance(value, str) else None


def _id(value) -> str | None:
    return value.get("id") if isinstance(value, Mapping) else value


def _our_id(metadata) -> int | None:
    return order_id_from(metadata.get("order_id")) if isinstance(metadata, Mapping) else None


def charge_refund_notice(event: WebhookEvent) -> ChargeRefundNotice | None:
    if event.type != "charge.refunded":
        return None
    charge = event.raw.get("data", {}).get("object", {})
    return ChargeRefundNotice(
        payment_ref=_id(charge.get("payment_intent")),
        order_id=_our_id(charge.get("metadata")),
        amount_refunded=int(charge.get("amount_refunded") or 0),
        currency=_upper(charge.get("currency")),
    )


def refund_notice(event: WebhookEvent) -> StripeRefundNotice | None:
    if event.type != "refund.updated":
        return None
    refund = event.raw.get("data", {}).get("object", {})
    return StripeRefundNotice(
        refund_id=str(refund.get("id") or ""),
        payment_ref=_id(refund.get("payment_intent")),
        amount=refund.get("amount"),
        currency=_upper(refund.get("currency")),
        status=REFUND_STATUSES.get(refund.get("status"), "pending"),
    )


def dispute_notice(event: WebhookEvent) -> DisputeNotice | None:
    if event.type not in DISPUTE_EVENTS:
        return None
    dispute = event.raw.get("data", {}).get("object", {})
    return DisputeNotice(
        dispute_id=str(dispute.get("id") or ""),
        payment_ref=_id(dispute.get("payment_intent")),
        amount=dispute.get("amount"),
        currency=_upper(dispute.get("currency")),
        reason=str(dispute.get("reason") or ""),
        status=str(dispute.get("status") or ""),
        closed=event.type == "charge.dispute.closed",
    )


def _provider_error(error: stripe.StripeError) -> ProviderError:
    transient = isinstance(error, stripe.APIConnectionError | stripe.RateLimitError) or (
        isinstance(error, stripe.APIError) and (error.http_status or 500) >= 500
    )
    message = getattr(error, "user_message", None) or str(error) or type(error).__name__
    return ProviderError(f"Stripe: {message}", transient=transient)


def payment_state(session: Mapping, event_type: str | None = None) -> PaymentState:
    """Read a Checkout Session (from the API or a webhook) in our words."""
    if event_type == "checkout.session.async_payment_failed":
        outcome = PaymentOutcome.FAILED
    elif session.get("status") == "expired":
        outcome = PaymentOutcome.EXPIRED
    elif session.get("status") == "complete":
        outcome = PaymentOutcome.PAID if session.get("payment_status") == "paid" else PaymentOutcome.PROCESSING
    else:
        outcome = PaymentOutcome.OPEN
    order_ref = order_id_from(session.get("client_reference_id")) or _our_id(session.get("metadata"))
    currency = session.get("currency")
    payment_intent = session.get("payment_intent")
    if isinstance(payment_intent, Mapping):
        payment_intent = payment_intent.get("id")
    return PaymentState(
        provider_ref=session["id"],
        outcome=outcome,
        order_id=order_ref,
        amount=session.get("amount_total"),
        currency=currency.upper() if currency else None,
        payment_ref=payment_intent,
    )


class StripeProvider:
    """Stripe through its own library, with a bounded wait on every call.

    The library waits 80 s for an answer by default: a Stripe that hangs would hold a web worker's thread that
    long for each buyer. Here every call gives up after `timeout` (requests' connect and read timeouts) and is
    retried `max_network_retries` times (with the same idempotency key) — except the buyer's checkout, which is
    tried once: a retry after a read timeout would double the buyer's wait, and their next click is the retry.
    """

    name = "stripe"

    def __init__(
        self,
        secret_key: str,
        webhook_secret: str,
        api_base: str,
        max_network_retries: int = 2,
        timeout: tuple[float, float] = (3.0, 10.0),
    ):
        self._webhook_secret = webhook_secret
        # One pool of kept-alive connections for the process. The library's default is a session per thread: one
        # open connection per web thread, and under an evented worker a new connection (and TLS handshake) per call.
        session = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=CONNECTIONS_KEPT)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base},
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout, session=session),
        )

    def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        order_ref = str(request.order_id)
        params = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "client_reference_id": order_ref,
            "metadata": {"order_id": order_ref},
            "payment_intent_data": {"metadata": {"order_id": order_ref}},
            "customer_email": request.email,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "expires_at": int(request.expires_at.timestamp()),
            # Checkout's own language list; one it lacks lets Stripe follow the buyer's browser.
            "locale": STRIPE_LOCALES.get(request.locale, "auto"),
        }
        try:
            session = self._client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": request.idempotency_key, "max_network_retries": 0}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return CheckoutResult(provider_ref=session.id, redirect_url=session.url)

    def get_payment(self, provider_ref: str) -> PaymentState:
        try:
            session = self._client.v1.checkout.sessions.retrieve(provider_ref)
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return payment_state(session.to_dict())

    def cancel_checkout(self, provider_ref: str) -> PaymentState:
        try:
            session = self._client.v1.checkout.sessions.expire(provider_ref)
        except stripe.InvalidRequestError:
            return self.get_payment(provider_ref)  # no longer open: completed or expired already
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return payment_state(session.to_dict())

    def refund(self, payment_ref: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        try:
            refund = self._client.v1.refunds.create(
                params={"payment_intent": payment_ref, "amount": amount},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return RefundResult(provider_refund_id=refund.id, status=REFUND_STATUSES.get(refund.status, "pending"))

    def payment_record(self, payment_ref: str) -> PaymentRecord:
        try:
            intent = self._client.v1.payment_intents.retrieve(payment_ref).to_dict()
            charge_id = _id(intent.get("latest_charge"))
            charge = self._client.v1.charges.retrieve(charge_id).to_dict() if charge_id else None
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        amount = intent.get("amount_received") or 0
        refunded = charge.get("amount_refunded", 0) if charge is not None else 0
        return PaymentRecord(
            payment_ref=payment_ref,
            paid=intent.get("status") == "succeeded",
            amount=amount,
            currency=_upper(intent.get("currency")),
            refunded=refunded,
            fully_refunded=amount > 0 and refunded >= amount,
        )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        # The library's own check of the signature and its time window; the event is then read as plain JSON,
        # since building its StripeObject tree (`Webhook.construct_event`) costs more than the rest of the request.
        try:
            stripe.WebhookSignature.verify_header(
                body, headers.get("Stripe-Signature"), self._webhook_secret, stripe.Webhook.DEFAULT_TOLERANCE
            )
        except stripe.SignatureVerificationError as error:
            raise WebhookSignatureError(str(error) or "invalid Stripe signature") from error
        return self.read_webhook(body)

    def read_webhook(self, body: bytes) -> WebhookEvent:
        raw = event_json(body, "type", "Stripe")
        obj = raw.get("data", {}).get("object", {})
        payment = payment_state(obj, raw["type"]) if raw.get("type") in CHECKOUT_EVENTS else None
        return WebhookEvent(event_id=raw["id"], type=raw["type"], payment=payment, raw=raw)
