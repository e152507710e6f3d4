"""Webhook events: recorded once, then translated into order changes. Events are triggers, our rows the truth."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from integrations.payments import PaymentOutcome, WebhookEvent

from ..extensions import db
from ..models import Order, ProviderEvent, get_by_id
from .orders import checkout_expired, confirm_payment, payment_failed, process_refunds


def handle_payment_event(
    provider_name: str, event: WebhookEvent, apply: Callable[[ProviderEvent], str] | None = None
) -> str:
    """Apply a verified payment event exactly once. Returns the outcome, also stored on the event row.

    `apply` replaces the usual payment handling for events that carry no payment (a provider's refund notice).

    Raises `orders.ConcurrentUpdate` when another request changed the order at the same moment; nothing
    is kept then (not even the event row), so the provider's retry is processed in full.
    """
    record = ProviderEvent(
        provider=provider_name,
        event_id=event.event_id,
        event_type=event.type,
        payload=json.dumps(dict(event.raw), default=str),
    )
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    record.outcome = apply(record) if apply is not None else _apply(provider_name, event, record)
    db.session.commit()
    if record.outcome == "refunded_no_seat":
        process_refunds()
    return record.outcome


def _apply(provider_name: str, event: WebhookEvent, record: ProviderEvent) -> str:
    payment = event.payment
    if payment is None:
        return "ignored"
    order = _order_for(provider_name, payment.order_id, payment.provider_ref)
    if order is None:
        return "unknown_order"
    record.order_id = order.id
    actor = f"{provider_name} {event.type} {event.event_id}"
    if payment.outcome == PaymentOutcome.PAID:
        return confirm_payment(order, payment, actor=actor)
    if payment.outcome == PaymentOutcome.FAILED:
        return payment_failed(order, actor=actor, note=event.type)
    if payment.outcome == PaymentOutcome.EXPIRED:
        return checkout_expired(order, actor=actor)
    return str(payment.outcome)


def _order_for(provider_name: str, order_id: int | None, provider_ref: str) -> Order | None:
    """The order the event speaks of: by our id in the metadata, cross-checked with the provider's ref."""
    order = get_by_id(Order, order_id)
    if order is None:
        order = db.session.scalar(
            select(Order).where(Order.provider == provider_name, Order.provider_ref == provider_ref)
        )
    if order is None or order.provider != provider_name:
        return None
    if order.provider_ref is None:
        order.provider_ref = provider_ref
    elif order.provider_ref != provider_ref:
        return None
    return order
