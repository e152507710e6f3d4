"""What the app holds about an attendee, read in one place: the export (everything, as JSON), the placeholders that
replace erased data, the optional uses of an email a buyer may agree to at checkout, and the scrubbing of stored
provider payloads.

A low layer: it only reads rows and imports no flow, so the outbox can attach an export to an email and the privacy
flow can build on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import (
    LiveSession,
    Order,
    OrderConsent,
    OrderLog,
    OutboxMessage,
    ProviderEvent,
    Refund,
    utcnow,
)

EXPORT_FORMAT = "webinar_pay.attendee_export/1"
ERASED_NAME = "[erased]"
ERASED_EMAIL = "erased@erased.invalid"  # RFC 2606: `.invalid` can never be delivered
ERASED_TEXT = "[erased]"

# Optional uses of the buyer's email, each needing a box the buyer ticks at checkout (unticked by default). The
# API's checkout field `consents` takes these names.
CHECKOUT_RECOVERY = "checkout_recovery"
CREATOR_NEWS = "creator_news"
CONSENT_PURPOSES = (CHECKOUT_RECOVERY, CREATOR_NEWS)

# Keys of provider payloads (Stripe, PayPal, Zoom) that hold a person's details.
PERSONAL_KEYS = frozenset(
    {
        "email", "email_address", "customer_email", "receipt_email", "payer_email", "name", "given_name", "surname",
        "full_name", "first_name", "last_name", "phone", "phone_number", "address", "shipping", "billing_details",
        "customer_details", "payer", "payer_info", "shipping_address", "user_name", "participant_user_id",
    }
)  # fmt: skip


def consent_wording(purpose: str, session: LiveSession) -> str:
    """The words next to the box at checkout, as the buyer reads them (and as the consent records keep them)."""
    words: dict[str, Callable[[], str]] = {
        CHECKOUT_RECOVERY: lambda: _("If I do not finish paying, email me once to remind me that my seat is waiting."),
        CREATOR_NEWS: lambda: _("Email me news of future sessions by %(name)s.", name=session.creator.name),
    }
    return words[purpose]()


def record_consents(order: Order, session: LiveSession, purposes: Iterable[str], source: str, now: datetime) -> None:
    """Keep what the buyer agreed to at checkout: each purpose, the words shown with its box, when, and from which
    page. The caller commits (with the order)."""
    for purpose in purposes:
        db.session.add(
            OrderConsent(
                order_id=order.id,
                purpose=purpose,
                wording=consent_wording(purpose, session),
                source=source[:200],
                given_at=now,
            )
        )


def has_consent(order: Order, purpose: str) -> bool:
    """Whether the buyer agreed to `purpose` for this order; an erased order has agreed to nothing any more."""
    if order.erased_at is not None:
        return False
    found = select(OrderConsent.id).where(OrderConsent.order_id == order.id, OrderConsent.purpose == purpose)
    return db.session.scalar(found) is not None


def attendee_orders(order: Order) -> list[Order]:
    """The orders of the same person (the same email) at the same creator; an erased order stands alone, since
    every erased order carries the same placeholder."""
    if order.erased_at is not None:
        return [order]
    return list(
        db.session.scalars(
            select(Order)
            .join(LiveSession, LiveSession.id == Order.session_id)
            .where(
                LiveSession.creator_id == order.session.creator_id,
                Order.email == order.email,
                Order.erased_at.is_(None),
            )
            .order_by(Order.id)
        )
    )


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _payload(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _order(order: Order) -> dict[str, Any]:
    session = order.session
    enrollment = order.enrollment
    messages = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.order_id == order.id).order_by(OutboxMessage.due_at, OutboxMessage.id)
    )
    events = db.session.scalars(
        select(ProviderEvent).where(ProviderEvent.order_id == order.id).order_by(ProviderEvent.id)
    )
    refunds = db.session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id))
    log = db.session.scalars(select(OrderLog).where(OrderLog.order_id == order.id).order_by(OrderLog.id))
    consents = db.session.scalars(
        select(OrderConsent).where(OrderConsent.order_id == order.id).order_by(OrderConsent.id)
    )
    return {
        "id": order.id,
        "session": {
            "id": session.id,
            "title": session.title,
            "starts_at": _time(session.starts_at),
            "timezone": session.timezone,
            "duration_minutes": session.duration_minutes,
            "organiser": session.creator.name,
        },
        "name": order.name,
        "email": order.email,
        "status": order.status,
        "amount": order.amount,
        "currency": order.currency,
        "provider": order.provider,
        "provider_ref": order.provider_ref,
        "payment_ref": order.payment_ref,
        "created_at": _time(order.created_at),
        "paid_at": _time(order.paid_at),
        "erased_at": _time(order.erased_at),
        "consents": [
            {"purpose": c.purpose, "wording": c.wording, "source": c.source, "given_at": _time(c.given_at)}
            for c in consents
        ],
        "enrollment": None
        if enrollment is None
        else {
            "status": enrollment.status,
            "join_url": enrollment.join_url,
            "attended": enrollment.attended,
            "created_at": _time(enrollment.created_at),
        },
        "emails": [
            {
                "kind": m.kind,
                "status": m.status,
                "due_at": _time(m.due_at),
                "sent_at": _time(m.sent_at),
                "to": m.sent_to,
                "reply_to": m.sent_reply_to,
                "subject": m.sent_subject,
                "text": m.sent_text,
                "html": m.sent_html,
                "ics": m.sent_ics,
            }
            for m in messages
        ],
        "refunds": [
            {
                "amount": r.amount,
                "currency": r.currency,
                "status": r.status,
                "reason": r.reason,
                "provider_refund_id": r.provider_refund_id,
                "created_at": _time(r.created_at),
            }
            for r in refunds
        ],
        "log": [
            {
                "at": _time(e.created_at),
                "from_status": e.from_status,
                "to_status": e.to_status,
                "actor": e.actor,
                "note": e.note,
            }
            for e in log
        ],
        "provider_events": [
            {
                "provider": e.provider,
                "type": e.event_type,
                "received_at": _time(e.received_at),
                "payload": _payload(e.payload),
            }
            for e in events
        ],
    }


def export_attendee(order: Order, now: datetime | None = None) -> dict[str, Any]:
    """Everything held about the attendee of `order` at its creator: their orders with enrolment, consents, emails
    (the copies of what was sent), refunds, history and the payment provider's events. Erased data shows as its
    placeholder."""
    orders = attendee_orders(order)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _time(now or utcnow()),
        "attendee": {"name": order.name, "email": order.email, "erased_at": _time(order.erased_at)},
        "orders": [_order(each) for each in orders],
    }


def export_json(order: Order, now: datetime | None = None) -> str:
    return json.dumps(export_attendee(order, now), indent=2, ensure_ascii=False)


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """`value` (parsed JSON) with the values of personal keys, and any text holding one of `secrets` (the email, the
    name), replaced by the placeholder."""
    secrets = [s.lower() for s in secrets if s]
    if isinstance(value, dict):
        return {
            key: ERASED_TEXT if key in PERSONAL_KEYS and item not in (None, "", {}, []) else scrub(item, secrets)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [scrub(item, secrets) for item in value]
    if isinstance(value, str) and any(secret in value.lower() for secret in secrets):
        return ERASED_TEXT
    return value


def scrub_text(text: str | None, secrets: Iterable[str]) -> str | None:
    """Free text (an error, a note) with every occurrence of `secrets` replaced."""
    if not text:
        return text
    for secret in secrets:
        if secret:
            start = text.lower().find(secret.lower())
            while start != -1:
                text = text[:start] + ERASED_TEXT + text[start + len(secret) :]
                start = text.lower().find(secret.lower(), start + len(ERASED_TEXT))
    return text
