"""Webhook events: recorded once, then translated into order changes. Events are triggers, our rows the truth."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from integrations.payments import PaymentOutcome, WebhookEvent
from integrations.payments.stripe import charge_refund_notice, dispute_notice, refund_notice

from ..extensions import db
from ..models import Order, ProviderEvent, get_by_id
from .jobs import record_event_once
from .orders import checkout_expired, confirm_payment, payment_failed
from .refunds import alert_dispute, dispute_changed, process_refunds, provider_refunded, stripe_refund_updated


def handle_payment_event(
    provider_name: str, event: WebhookEvent, apply: Callable[[ProviderEvent], str] | None = None
) -> str:
    """Apply a verified payment event exactly once. Returns the outcome, also stored on the event row.

    `apply` replaces the usual payment handling for events that carry no payment (a provider's refund notice).

    Raises `state.ConcurrentUpdate` when another transaction changed the order at the same moment; nothing
    is kept then (not even the event row), so the next try (the webhook inbox's) is processed in full.
    """
    record = record_event_once(provider_name, event.event_id, event.type, event.raw)
    if record is None:
        return "duplicate"
    outcome = record.outcome = apply(record) if apply is not None else _apply(provider_name, event, record)
    db.session.commit()
    if outcome == "refunded_no_seat":
        process_refunds()
    return outcome


def _apply(provider_name: str, event: WebhookEvent, record: ProviderEvent) -> str:
    payment = event.payment
    if payment is None:
        return "ignored"
    order = _order_for(provider_name, payment.order_id, payment.provider_ref)
    if order is None:
        return "unknown_order"
    actor = f"{provider_name} {event.type} {event.event_id}"
    if payment.outcome == PaymentOutcome.PAID:
        outcome = confirm_payment(order, payment, actor=actor)
    elif payment.outcome == PaymentOutcome.FAILED:
        outcome = payment_failed(order, actor=actor, note=event.type)
    elif payment.outcome == PaymentOutcome.EXPIRED:
        outcome = checkout_expired(order, actor=actor)
    else:
        outcome = str(payment.outcome)
    record.order_id = order.id  # set last: written with the outcome in one UPDATE, not flushed on its own before
    return outcome


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


# -- Stripe's refund and dispute events ------------------------------------------------------------------------


def handle_stripe_event(event: WebhookEvent) -> str:
    """Checkout events take the common payment path; refunds and disputes are applied by `services.refunds`."""
    actor = f"stripe {event.type} {event.event_id}"
    charge = charge_refund_notice(event)
    if charge is not None:

        def apply_charge(record: ProviderEvent) -> str:
            order = _order_by_payment("stripe", charge.order_id, charge.payment_ref)
            if order is None:
                return "unknown_order"
            record.order_id = order.id
            return provider_refunded(order, charge.amount_refunded, charge.currency, actor=actor, cumulative=True)

        return handle_payment_event("stripe", event, apply=apply_charge)
    refund = refund_notice(event)
    if refund is not None:
        return handle_payment_event("stripe", event, apply=lambda record: stripe_refund_updated(refund, record, actor))
    dispute = dispute_notice(event)
    if dispute is not None:
        disputed: list[Order] = []

        def apply_dispute(record: ProviderEvent) -> str:
            order = _order_by_payment("stripe", None, dispute.payment_ref)
            if order is None:
                return "unknown_order"
            record.order_id = order.id
            outcome = dispute_changed(order, dispute, actor=actor)
            if not outcome.startswith("ignored"):
                disputed.append(order)
            return outcome

        outcome = handle_payment_event("stripe", event, apply=apply_dispute)
        for order in disputed:
            alert_dispute(order, opened=not dispute.closed)
        return outcome
    return handle_payment_event("stripe", event)


def _order_by_payment(provider_name: str, order_id: int | None, payment_ref: str | None) -> Order | None:
    """The order a refund or dispute speaks of: by the payment it was paid with, cross-checked with our id."""
    if not payment_ref:
        return None
    order = db.session.scalar(select(Order).where(Order.provider == provider_name, Order.payment_ref == payment_ref))
    if order is None or (order_id is not None and order.id != order_id):
        return None
    return order
