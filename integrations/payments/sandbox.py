"""Demo-mode provider: a local pay page stands in for the hosted checkout. Never enabled with real keys."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from . import (
    CheckoutRequest,
    CheckoutResult,
    PaymentOutcome,
    PaymentState,
    RefundResult,
    WebhookEvent,
    WebhookSignatureError,
)


class SandboxProvider:
    name = "sandbox"

    def __init__(self, pay_page_url: str):
        self._pay_page_url = pay_page_url.rstrip("/")

    def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        ref = f"sbx_{request.order_id}_{secrets.token_hex(8)}"
        return CheckoutResult(provider_ref=ref, redirect_url=f"{self._pay_page_url}/{ref}")

    def get_payment(self, provider_ref: str) -> PaymentState:
        # Nothing remote to ask: a sandbox payment exists only once the pay page confirmed it.
        return PaymentState(provider_ref, PaymentOutcome.OPEN, None, None, None)

    def cancel_checkout(self, provider_ref: str) -> PaymentState:
        return PaymentState(provider_ref, PaymentOutcome.EXPIRED, None, None, None)

    def refund(self, payment_ref: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        return RefundResult(provider_refund_id=f"sbx_re_{secrets.token_hex(8)}", status="succeeded")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        raise WebhookSignatureError("the sandbox provider does not receive webhooks")

    def read_webhook(self, body: bytes) -> WebhookEvent:
        raise WebhookSignatureError("the sandbox provider does not receive webhooks")

    def payment_event(
        self, provider_ref: str, order_id: int, amount: int, currency: str, *, paid: bool
    ) -> WebhookEvent:
        """What the local pay page reports when the buyer clicks pay (or cancel)."""
        outcome = PaymentOutcome.PAID if paid else PaymentOutcome.FAILED
        payment = PaymentState(provider_ref, outcome, order_id, amount, currency, payment_ref=f"sbx_pay_{provider_ref}")
        event_type = "sandbox.payment.succeeded" if paid else "sandbox.payment.failed"
        return WebhookEvent(event_id=f"sbx_evt_{secrets.token_hex(12)}", type=event_type, payment=payment)
