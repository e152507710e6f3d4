"""Stripe Checkout through the official library, pointed at `api_base` (a local fake in tests)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import stripe

from . import (
    CheckoutRequest,
    CheckoutResult,
    PaymentOutcome,
    PaymentState,
    ProviderError,
    RefundResult,
    WebhookEvent,
    WebhookSignatureError,
)

CHECKOUT_EVENTS = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
}


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
    metadata = session.get("metadata") or {}
    order_ref = session.get("client_reference_id") or metadata.get("order_id")
    currency = session.get("currency")
    payment_intent = session.get("payment_intent")
    if isinstance(payment_intent, Mapping):
        payment_intent = payment_intent.get("id")
    return PaymentState(
        provider_ref=session["id"],
        outcome=outcome,
        order_id=int(order_ref) if order_ref and str(order_ref).isdigit() else None,
        amount=session.get("amount_total"),
        currency=currency.upper() if currency else None,
        payment_ref=payment_intent,
    )


class StripeProvider:
    name = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str, api_base: str, max_network_retries: int = 2):
        self._webhook_secret = webhook_secret
        self._client = stripe.StripeClient(
            secret_key, base_addresses={"api": api_base}, max_network_retries=max_network_retries
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
        }
        try:
            session = self._client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": request.idempotency_key}
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
        status = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}.get(refund.status, "pending")
        return RefundResult(provider_refund_id=refund.id, status=status)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        try:
            stripe.Webhook.construct_event(body, headers.get("Stripe-Signature"), self._webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as error:
            raise WebhookSignatureError(str(error) or "invalid Stripe signature") from error
        raw = json.loads(body)
        obj = raw.get("data", {}).get("object", {})
        payment = payment_state(obj, raw["type"]) if raw.get("type") in CHECKOUT_EVENTS else None
        return WebhookEvent(event_id=raw["id"], type=raw["type"], payment=payment, raw=raw)
