"""One interface for every payment provider; the app picks implementations from its configuration."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class CheckoutRequest:
    order_id: int
    description: str
    amount: int
    currency: str
    email: str
    success_url: str
    cancel_url: str
    expires_at: datetime
    idempotency_key: str
    locale: str = "en"  # the buyer's language, `en` or `fr`: each provider spells it its own way


@dataclass(frozen=True)
class CheckoutResult:
    provider_ref: str
    redirect_url: str


class PaymentOutcome(StrEnum):
    """What a provider says about one checkout, in our words."""

    OPEN = "open"  # the buyer has not finished yet
    PROCESSING = "processing"  # finished, money not confirmed yet (bank debits, pending captures)
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class PaymentState:
    provider_ref: str
    outcome: PaymentOutcome
    order_id: int | None
    amount: int | None
    currency: str | None
    payment_ref: str | None = None


@dataclass(frozen=True)
class RefundResult:
    provider_refund_id: str
    status: str  # "pending", "succeeded" or "failed"


@dataclass(frozen=True)
class PaymentRecord:
    """What the provider holds for one confirmed payment, for reconciliation."""

    payment_ref: str
    paid: bool  # the money was taken (even if given back since)
    amount: int | None
    currency: str | None
    refunded: int | None  # None: the provider says "partly" without a figure (PayPal)
    fully_refunded: bool


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    type: str
    payment: PaymentState | None
    raw: Mapping = field(default_factory=dict, repr=False)


class ProviderError(Exception):
    """The provider refused or could not be reached. `transient` errors are worth retrying."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class WebhookSignatureError(Exception):
    pass


class PaymentProvider(Protocol):
    name: str

    def create_checkout(self, request: CheckoutRequest) -> CheckoutResult:
        """Start a hosted checkout; the buyer is sent to `redirect_url`."""

    def get_payment(self, provider_ref: str) -> PaymentState:
        """Ask the provider where a checkout stands (used when a webhook is late)."""

    def cancel_checkout(self, provider_ref: str) -> PaymentState:
        """Close an open checkout so it can no longer be paid; returns its final state."""

    def refund(self, payment_ref: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Give `amount` back on a confirmed payment."""

    def payment_record(self, payment_ref: str) -> PaymentRecord:
        """Where one confirmed payment stands at the provider: taken, refunded (reconciliation)."""

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify the signature of a webhook request and translate it; raises WebhookSignatureError."""

    def read_webhook(self, body: bytes) -> WebhookEvent:
        """Translate a body whose signature `parse_webhook` already verified (the worker applies it later)."""


def order_id_from(value: object) -> int | None:
    """Our order id as a provider hands it back (metadata, `custom_id`): ASCII digits only, since `'²'.isdigit()`
    is true yet `int('²')` fails, and no longer than an id can be."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 10:
        return int(text)
    return None


def event_json(body: bytes, type_field: str, provider: str) -> dict:
    """A webhook body as a JSON object with a string `id` and event type; anything else is refused."""
    try:
        raw = json.loads(body)
    except ValueError as error:
        raise WebhookSignatureError("the body is not JSON") from error
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get(type_field), str):
        raise WebhookSignatureError(f"the body is not a {provider} event")
    return raw
