"""PayPal's extra steps around the common payment path: we capture the approved order ourselves.

A buyer who comes back from PayPal, and a CHECKOUT.ORDER.APPROVED webhook (the buyer closed the tab
first), both lead to one capture; its result goes through `handle_payment_event` like any webhook, so
`confirm_payment` decides with the same checks (amount, currency, seat) for every provider.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select

from integrations.payments import PaymentState, ProviderError, WebhookEvent
from integrations.payments.paypal import ORDER_APPROVED, RefundNotice, refund_notice

from ..extensions import db
from ..models import Order, OrderStatus, ProviderEvent, get_by_id
from .payments import provider as get_provider
from .refunds import provider_refunded
from .webhooks import handle_payment_event

log = logging.getLogger(__name__)
PROVIDER = "paypal"


def _capture_if_pending(order_id: int | None, paypal_order_id: str) -> PaymentState | None:
    """Capture the PayPal order when our order still waits for it; None when there is nothing to capture.

    An order of ours that is no longer pending (expired, cancelled) is never captured: no money moves.
    """
    order = get_by_id(Order, order_id)
    if order is None:
        order = db.session.scalar(
            select(Order).where(Order.provider == PROVIDER, Order.provider_ref == paypal_order_id)
        )
    pending = (
        order is not None
        and order.provider == PROVIDER
        and order.provider_ref == paypal_order_id
        and order.status == OrderStatus.PENDING
    )
    db.session.commit()  # no transaction stays open across the call to PayPal
    if not pending:
        return None
    return get_provider(PROVIDER).capture(paypal_order_id)


def buyer_returned(order: Order, paypal_order_id: str) -> str:
    """The buyer approved on PayPal and came back: capture and confirm. Idempotent; returns the outcome.

    Raises `state.ConcurrentUpdate` when a webhook changed the order at the same moment.
    """
    try:
        state = _capture_if_pending(order.id, paypal_order_id)
    except ProviderError as error:
        log.warning("capture of PayPal order %s (order %s) failed: %s", paypal_order_id, order.id, error)
        return "capture_failed"
    if state is None:
        return "nothing_to_capture"
    if state.payment_ref is None:
        return str(state.outcome)
    # One record per capture: a concurrent APPROVED webhook that captured too is then a duplicate.
    event = WebhookEvent(
        event_id=f"capture-{state.payment_ref}",
        type="capture.on_return",
        payment=state,
        raw={"paypal_order_id": paypal_order_id, "capture_id": state.payment_ref, "outcome": str(state.outcome)},
    )
    return handle_payment_event(PROVIDER, event)


def handle_paypal_event(event: WebhookEvent) -> str:
    """Apply a verified PayPal webhook once. Transient PayPal errors while capturing propagate (answer 503)."""
    if event.type == ORDER_APPROVED and event.payment is not None:
        if _seen(event.event_id):
            return "duplicate"
        try:
            state = _capture_if_pending(event.payment.order_id, event.payment.provider_ref)
        except ProviderError as error:
            if error.transient:
                raise
            log.warning("capture of PayPal order %s refused: %s", event.payment.provider_ref, error)
            state = None
        if state is not None:
            event = replace(event, payment=state)
        return handle_payment_event(PROVIDER, event)
    notice = refund_notice(event)
    if notice is not None:
        return handle_payment_event(PROVIDER, event, apply=lambda record: _apply_refund(notice, event, record))
    return handle_payment_event(PROVIDER, event)


def _seen(event_id: str) -> bool:
    return (
        db.session.scalar(
            select(ProviderEvent.id).where(ProviderEvent.provider == PROVIDER, ProviderEvent.event_id == event_id)
        )
        is not None
    )


def _apply_refund(notice: RefundNotice, event: WebhookEvent, record: ProviderEvent) -> str:
    order = get_by_id(Order, notice.order_id)
    if order is None and notice.capture_id:
        order = db.session.scalar(
            select(Order).where(Order.provider == PROVIDER, Order.payment_ref == notice.capture_id)
        )
    if order is None or order.provider != PROVIDER:
        return "unknown_order"
    if notice.capture_id and order.payment_ref and order.payment_ref != notice.capture_id:
        return "unknown_order"
    record.order_id = order.id
    if notice.status != "COMPLETED":
        return f"refund_{notice.status.lower() or 'unknown'}"
    actor = f"{PROVIDER} {event.type} {event.event_id}"
    return provider_refunded(order, notice.amount, notice.currency, actor=actor, refund_id=notice.refund_id or None)
