"""Money given back: creator refunds, refunds the providers report, disputes. One row per refund, sent with a key.

A refund is first recorded as a pending `Refund` row with its own idempotency key, then sent to the order's
provider with that key, so a retry (ours or the worker's) can never pay twice. The order row is locked while
the row is planned: two requests at once see each other's refund and can never give back more than was paid.
Once the refunds that succeeded cover the whole payment the order becomes `refunded`: seat, access and
pending emails go, and the attendee gets the refund email.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_mail import Message
from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from integrations.payments import ProviderError
from integrations.payments.stripe import DisputeNotice, StripeRefundNotice

from ..config import settings
from ..extensions import db, mail
from ..limits import MAX_IDEMPOTENCY_KEY_LENGTH
from ..locales import DEFAULT_LOCALE
from ..models import (
    LiveSession,
    Order,
    OrderLog,
    OrderStatus,
    ProviderEvent,
    Refund,
    RefundStatus,
    SessionStatus,
    utcnow,
)
from ..money import format_amount
from . import Conflict, ServiceError, ValidationError
from .enrollment import cancel_enrollment, cancel_session_enrollments
from .jobs import backoff, claim_each, claim_one, worker_context
from .outbox.kinds import REFUND
from .outbox.planning import cancel_messages, session_cancelled
from .payments import provider as get_provider
from .seats import give_seat_back, lock_order
from .state import transition, transition_all
from .text import status_label

log = logging.getLogger(__name__)

REFUND_MAX_ATTEMPTS = 8
REFUND_RETRY_CAP = timedelta(hours=1)  # the retries double from REFUND_RETRY_BASE_SECONDS up to this
REFUND_LEASE = timedelta(minutes=5)  # a worker that stops while sending gives the refund back after this
REFUNDABLE = {OrderStatus.PAID}


class RefundRefused(ServiceError):
    code = "refund_refused"
    http_status = 409


# -- the audit trail ----------------------------------------------------------------------------------------------


def note(order: Order, actor: str, text: str) -> None:
    """An audit row for something that happened to an order without changing its state (a partial refund)."""
    db.session.add(
        OrderLog(order_id=order.id, from_status=order.status, to_status=order.status, actor=actor, note=text)
    )


def _money(amount: int, currency: str) -> str:
    return format_amount(amount, currency, locale=str(get_locale() or DEFAULT_LOCALE))


# -- planning ------------------------------------------------------------------------------------------------------


def _new_key(order_id: int) -> str:
    """A refund's own idempotency key: sent with every attempt, so a retry never pays twice."""
    return f"refund-{order_id}-{secrets.token_hex(12)}"


def plan_refund(order: Order, reason: str, amount: int | None = None, key: str | None = None) -> Refund:
    """Record a refund to be sent by `process_refunds`. The caller holds the order and commits."""
    refund = Refund(
        order_id=order.id,
        provider=order.provider,
        amount=order.amount if amount is None else amount,
        currency=order.currency,
        reason=reason,
        status=RefundStatus.PENDING,
        idempotency_key=key or _new_key(order.id),
        next_attempt_at=utcnow(),
    )
    db.session.add(refund)
    return refund


OUTSTANDING = (RefundStatus.PENDING, RefundStatus.SUCCEEDED)


def refunded_so_far(order: Order, *, besides: int | None = None) -> int:
    """What is given back or on its way: the refunds that succeeded or are pending (but for the one `besides`)."""
    query = select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.order_id == order.id, Refund.status.in_(OUTSTANDING)
    )
    if besides is not None:
        query = query.where(Refund.id != besides)
    return db.session.scalar(query)


def _hold_order(order_id: int) -> Order:
    """Start a fresh transaction that holds the order: a write first, so SQLite takes its lock before reading."""
    db.session.rollback()
    db.session.execute(
        update(Order)
        .where(Order.id == order_id)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return lock_order(db.session.get(Order, order_id))


def _check_amount(amount, remaining: int) -> int:
    """The amount a request asks for, as it came (JSON): a whole number of minor units within what is left."""
    if amount is None:
        return remaining
    if isinstance(amount, float) and not math.isfinite(amount):  # JSON's 1e999999 is inf
        raise ValidationError(
            _("Please correct the marked fields."),
            fields={"amount": _("Enter an amount between 1 and %(remaining)d.", remaining=remaining)},
        )
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError(
            _("Please correct the marked fields."),
            fields={"amount": _("The amount is a whole number of minor units (cents).")},
        )
    if not 0 < amount <= remaining:
        raise ValidationError(
            _("Please correct the marked fields."),
            fields={"amount": _("Enter an amount between 1 and %(remaining)d.", remaining=remaining)},
        )
    return amount


def refund_order(
    order: Order, amount: int | None, actor: str, *, reason: str = "requested_by_creator", key: str | None = None
) -> tuple[Refund, bool]:
    """Give `amount` (None: all that is left) back through the order's provider. Returns (refund, created).

    The same `key` twice returns the first refund and sends nothing again; two different requests at once
    can together refund at most what was paid.
    """
    if key is not None and (
        not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not (key.isascii() and key.isprintable())
    ):
        raise ValidationError(
            _("The idempotency key must be 1 to %(n)d printable ASCII characters.", n=MAX_IDEMPOTENCY_KEY_LENGTH)
        )
    key = _stored_key(order.id, key) if key else None
    if key is not None:
        existing = _refund_by_key(key)
        if existing is not None:
            return _same_request(existing, amount), False
    order = _hold_order(order.id)
    if order.status not in REFUNDABLE or order.amount == 0 or order.payment_ref is None:
        db.session.rollback()
        raise Conflict(
            _("Only a paid order can be refunded; this one is %(status)s.", status=status_label(order.status))
        )
    remaining = order.amount - refunded_so_far(order)
    if remaining <= 0:
        db.session.rollback()
        raise Conflict(_("This order has been refunded in full already."))
    try:
        amount = _check_amount(amount, remaining)
    except ValidationError:
        db.session.rollback()
        raise
    refund = plan_refund(order, reason, amount, key)
    note(order, actor, _("Refund of %(amount)s requested.", amount=_money(amount, order.currency)))
    try:
        db.session.commit()
    except IntegrityError:  # the same key from a concurrent request won
        db.session.rollback()
        return _same_request(_refund_by_key(key), amount), False
    _send(refund.id, utcnow(), actor)
    refund = db.session.get(Refund, refund.id)
    if refund.status == RefundStatus.FAILED:
        raise RefundRefused(
            _("%(provider)s refused the refund: %(error)s", provider=refund.provider, error=refund.last_error or "?")
        )
    return refund, True


def _refund_by_key(key: str) -> Refund | None:
    return db.session.scalar(select(Refund).where(Refund.idempotency_key == key))


class IdempotencyKeyReused(ServiceError):
    code = "idempotency_key_reused"
    http_status = 422


def _stored_key(order_id: int, key: str) -> str:
    """The client's key, scoped to the order; hashed when both would not fit the column."""
    stored = f"{order_id}:{key}"
    if len(stored) > MAX_IDEMPOTENCY_KEY_LENGTH:
        stored = f"{order_id}:{hashlib.sha256(key.encode()).hexdigest()}"[:MAX_IDEMPOTENCY_KEY_LENGTH]
    return stored


def _same_request(existing: Refund, amount) -> Refund:
    """A key names one request: sent again with another amount, it is a mistake to report, never the first refund.

    Without `amount` ("all that is left") the request is taken as the same one.
    """
    if amount is not None and amount != existing.amount:
        raise IdempotencyKeyReused(
            _("This Idempotency-Key was used for a refund of %(amount)d; use a new key for another amount.",
              amount=existing.amount)
        )  # fmt: skip
    return existing


# -- sending -------------------------------------------------------------------------------------------------------


def _due(now: datetime) -> list[ColumnElement[bool]]:
    return [Refund.status == RefundStatus.PENDING, Refund.next_attempt_at <= now]


def _lease(now: datetime) -> dict[str, Any]:
    return {"next_attempt_at": now + REFUND_LEASE, "attempts": Refund.attempts + 1}


def process_refunds(limit: int = 50, now: datetime | None = None) -> int:
    """Send due refunds to their providers (the worker's job); returns how many the provider accepted."""
    now = now or utcnow()
    # Audit notes are translated text, which needs a request (for the language).
    with worker_context():
        due = claim_each(Refund, due=_due(now), claim=_lease(now), limit=limit)
        return sum(_deliver(refund_id, now, "refund worker") for refund_id in due)


def _retry_delay(attempts: int) -> timedelta:
    return backoff(attempts, settings().REFUND_RETRY_BASE_SECONDS, REFUND_RETRY_CAP.total_seconds())


def _send(refund_id: int, now: datetime, actor: str) -> bool:
    """Claim one due refund (a lease, so one process sends it), send it, apply the answer. True if accepted."""
    return claim_one(Refund, refund_id, due=_due(now), claim=_lease(now)) and _deliver(refund_id, now, actor)


def _deliver(refund_id: int, now: datetime, actor: str) -> bool:
    """Send a refund this worker claimed and apply the answer. True if the provider accepted it."""
    order = _hold_order(db.session.get(Refund, refund_id).order_id)
    refund = _fit_to_balance(order, db.session.get(Refund, refund_id, populate_existing=True), actor)
    db.session.commit()
    if refund is None:
        return False
    if refund.id != refund_id:  # replaced by a refund of what is left: send that one instead
        return _send(refund.id, max(now, utcnow()), actor)
    order = db.session.get(Order, refund.order_id)
    try:
        result = get_provider(refund.provider).refund(
            order.payment_ref, refund.amount, refund.currency, idempotency_key=refund.idempotency_key
        )
    except (ProviderError, ServiceError) as error:
        if getattr(error, "transient", False) and refund.attempts < REFUND_MAX_ATTEMPTS:
            refund.last_error = str(error)
            refund.next_attempt_at = now + _retry_delay(refund.attempts)
            note(order, actor, _("Refund attempt %(n)d failed, will retry: %(error)s", n=refund.attempts, error=error))
        else:
            transition(refund, RefundStatus.FAILED, last_error=str(error), next_attempt_at=None)
            note(order, actor, _("Refund failed: %(error)s", error=error))
            log.error("refund %s for order %s failed for good: %s", refund.id, order.id, error)
        db.session.commit()
        return False
    refund.provider_refund_id = result.provider_refund_id
    refund.next_attempt_at = None
    _settle(refund, RefundStatus(result.status), actor)
    db.session.commit()
    return True


def _fit_to_balance(order: Order, refund: Refund, actor: str) -> Refund | None:
    """Before a refund goes (again) to its provider: what is still to give back, read under the order's lock.

    Others may have been refunded since it was planned (a failed refund retried after a later one succeeded).
    Nothing left: the refund is cancelled, with the reason. Less left than its amount: it is cancelled and a refund
    of what is left, with a key of its own (a provider refuses a key sent again with another amount), replaces it.
    Returns the refund to send, or None. The caller holds the order (`_hold_order`) and commits.
    """
    left = order.amount - refunded_so_far(order, besides=refund.id)
    if refund.amount <= left:
        return refund
    amount = _money(refund.amount, refund.currency)
    given = _money(order.amount - left, order.currency)
    if left <= 0:
        reason = _("Not sent: %(given)s, all of the payment, has been refunded otherwise.", given=given)
        transition(refund, RefundStatus.CANCELLED, next_attempt_at=None, last_error=reason)
        note(order, actor, _("Refund of %(amount)s cancelled. %(reason)s", amount=amount, reason=reason))
        return None
    reason = _(
        "Not sent: %(given)s has been refunded otherwise, so only %(left)s is left to give back.",
        given=given, left=_money(left, order.currency),
    )  # fmt: skip
    transition(refund, RefundStatus.CANCELLED, next_attempt_at=None, last_error=reason)
    note(order, actor, _("Refund of %(amount)s replaced by one of what is left. %(reason)s",
                         amount=amount, reason=reason))  # fmt: skip
    replacement = plan_refund(order, refund.reason, left)
    db.session.flush()
    return replacement


def _settle(refund: Refund, status: RefundStatus, actor: str) -> None:
    """Apply a refund's final word from its provider (our call's answer or a webhook). The caller commits."""
    if refund.status == status:
        return
    transition(refund, status)
    order = lock_order(db.session.get(Order, refund.order_id))
    amount = _money(refund.amount, refund.currency)
    if status == RefundStatus.FAILED:
        note(order, actor, _("Refund of %(amount)s failed at %(provider)s.", amount=amount, provider=refund.provider))
        return
    if status != RefundStatus.SUCCEEDED:
        return
    given_back = _succeeded(order)
    ref = refund.provider_refund_id or ""
    if given_back >= order.amount and order.status in {OrderStatus.PAID, OrderStatus.DISPUTED}:
        _refund_in_full(order, actor, _("Refunded %(amount)s (%(ref)s).", amount=amount, ref=ref))
    else:
        note(order, actor, _("Refunded %(amount)s (%(ref)s).", amount=amount, ref=ref))


def _succeeded(order: Order) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.order_id == order.id, Refund.status == RefundStatus.SUCCEEDED
        )
    )


def _refund_in_full(order: Order, actor: str, text: str) -> None:
    """The order's money is back with the attendee: seat, access and pending emails go; the refund email goes out."""
    transition(order, OrderStatus.REFUNDED, actor=actor, note=text)
    give_seat_back(order)
    cancel_enrollment(order)
    cancel_messages(order, notice=REFUND)


# -- what the providers report ------------------------------------------------------------------------------------


def provider_refunded(
    order: Order,
    amount: int | None,
    currency: str | None,
    actor: str,
    *,
    refund_id: str | None = None,
    cumulative: bool = False,
) -> str:
    """The provider reports money given back (its dashboard, a reversal, or the notice of our own refund).

    `amount` is this refund's (PayPal) or, with `cumulative`, all that was refunded on the payment (Stripe).
    A notice of our own refund settles that refund; a full refund made elsewhere makes the order refunded.
    The caller commits.
    """
    order = lock_order(order)
    ours = db.session.scalar(
        select(Refund).where(Refund.order_id == order.id, Refund.provider_refund_id == refund_id)
    ) if refund_id else None  # fmt: skip
    if ours is not None:
        _settle(ours, RefundStatus.SUCCEEDED, actor)
        return "own_refund"
    if (currency or "").upper() != order.currency or amount is None:
        return "ignored_currency"
    if cumulative and 0 < amount <= _succeeded(order):
        return "own_refund"
    if amount < order.amount:
        note(order, actor, _("Partial refund of %(amount)s at the provider.", amount=_money(amount, order.currency)))
        return "partial_refund_recorded"
    if order.status not in {OrderStatus.PAID, OrderStatus.DISPUTED}:
        return "ignored_" + order.status
    _refund_in_full(order, actor, _("Refunded at the payment provider."))
    return "refunded"


def stripe_refund_updated(notice: StripeRefundNotice, record: ProviderEvent, actor: str) -> str:
    """`refund.updated`: a refund of ours moved on at Stripe (pending -> succeeded, or failed later)."""
    refund = db.session.scalar(
        select(Refund).where(Refund.provider == "stripe", Refund.provider_refund_id == notice.refund_id)
    )
    if refund is None:
        return "unknown_refund"  # made in Stripe's dashboard: `charge.refunded` carries it
    record.order_id = refund.order_id
    if notice.status not in {RefundStatus.SUCCEEDED, RefundStatus.FAILED}:
        return "refund_" + notice.status
    if refund.status == notice.status:
        return "already_" + notice.status
    _settle(refund, RefundStatus(notice.status), actor)
    return "refund_" + notice.status


def dispute_changed(order: Order, dispute: DisputeNotice, actor: str) -> str:
    """A card dispute opened or closed. Opened: the order is disputed (money held by the bank), the creator told.

    Won: paid again. Lost: the money is gone, so the order is refunded like any other. The caller commits.
    """
    order = lock_order(order)
    amount = _money(dispute.amount or 0, dispute.currency or order.currency)
    if not dispute.closed:
        if order.status != OrderStatus.PAID:
            return "ignored_" + order.status
        transition(
            order,
            OrderStatus.DISPUTED,
            actor=actor,
            note=_("Dispute opened (%(reason)s), %(amount)s.", reason=dispute.reason, amount=amount),
        )
        return "disputed"
    if order.status != OrderStatus.DISPUTED:
        return "ignored_" + order.status
    if dispute.won:
        transition(order, OrderStatus.PAID, actor=actor, note=_("Dispute won."))
        return "dispute_won"
    _refund_in_full(
        order,
        actor,
        _("Dispute lost (%(status)s): %(amount)s returned to the card holder.", status=dispute.status, amount=amount),
    )
    return "dispute_lost"


def alert_dispute(order: Order, opened: bool) -> None:
    """Email the creator about a dispute. Best effort: the dashboard shows the dispute in any case."""
    session = order.session
    base = settings().BASE_URL
    with force_locale(session.creator.locale or DEFAULT_LOCALE):  # the creator's language, not the request's
        subject, text = _dispute_words(order, opened)
    body = f"{text}\n\n{base}/dashboard/orders/{order.id}"
    try:
        mail.send(Message(subject=subject, recipients=[session.creator.email], body=body))
    except Exception as error:  # noqa: BLE001 - a mail failure must not lose the webhook's work
        log.warning("could not tell the creator about the dispute on order %s: %s", order.id, error)


def _dispute_words(order: Order, opened: bool) -> tuple[str, str]:
    session = order.session
    if opened:
        subject = _('Payment disputed: %(name)s, "%(title)s"', name=order.name, title=session.title)
        text = _(
            "%(name)s <%(email)s> disputed their payment of %(amount)s with their bank. The money is held until "
            "the dispute is decided; answer it in your Stripe dashboard before the deadline.",
            name=order.name, email=order.email, amount=_money(order.amount, order.currency),
        )  # fmt: skip
    else:
        subject = _('Dispute closed: %(name)s, "%(title)s"', name=order.name, title=session.title)
        text = _("The dispute is closed; the order is now %(status)s.", status=status_label(order.status))
    return subject, text


# -- attendees cancelling ---------------------------------------------------------------------------------------------


def cancellation_deadline(session: LiveSession) -> datetime | None:
    """Until when an attendee may cancel for a full refund; None when the session allows no self-cancellation."""
    if session.cancellation_hours is None:
        return None
    return session.starts_at - timedelta(hours=session.cancellation_hours)


def can_self_cancel(order: Order, now: datetime | None = None) -> bool:
    deadline = cancellation_deadline(order.session)
    return order.status == OrderStatus.PAID and deadline is not None and (now or utcnow()) < deadline


def self_cancel(order: Order, now: datetime | None = None) -> Refund | None:
    """The attendee gives their seat back within the session's policy: refunded in full, automatically.

    The order is refunded at once (seat, access and emails go); the money follows, retried by the worker if the
    provider is down. Returns the refund (None for a free seat).
    """
    now = now or utcnow()
    order = _hold_order(order.id)
    deadline = cancellation_deadline(order.session)
    if order.status != OrderStatus.PAID:
        db.session.rollback()
        raise Conflict(_("This order is %(status)s: there is nothing to cancel.", status=status_label(order.status)))
    if deadline is None:
        db.session.rollback()
        raise Conflict(_("This session does not allow cancellations. Please contact the organiser."))
    if now >= deadline:
        db.session.rollback()
        raise Conflict(
            _("Cancellations with a refund closed %(n)d hours before the start.", n=order.session.cancellation_hours)
        )
    remaining = order.amount - refunded_so_far(order)
    refund = plan_refund(order, "cancelled_by_attendee", remaining) if remaining > 0 and order.payment_ref else None
    _refund_in_full(order, "attendee", _("Cancelled by the attendee within the cancellation policy."))
    db.session.commit()
    if refund is not None:
        _send(refund.id, utcnow(), "attendee")
    return refund


# -- the creator cancels a session ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundProgress:
    total: int
    succeeded: int
    pending: int
    failed: list[Refund]

    @property
    def done(self) -> bool:
        return self.pending == 0 and not self.failed


def cancel_session(session: LiveSession, actor: str) -> int:
    """Cancel a session: sales stop, every paid attendee is refunded in full and told, access and reminders go.

    The orders change at once, in one transaction of a few statements whatever the number of attendees (a large
    session must not outlast the request); the refunds are sent by the worker (retried while a provider is down)
    and their progress is shown on the session page. Returns how many attendees are refunded.
    """
    if session.status not in {SessionStatus.DRAFT, SessionStatus.PUBLISHED} or session.has_started():
        raise Conflict(_("Only a session that has not started yet can be cancelled."))
    # First a write: late payments from now on find the session cancelled, and SQLite takes its lock.
    transition(session, SessionStatus.CANCELLED)
    session_cancelled(session)  # every paid attendee: reminders cancelled, the cancellation email planned
    refunded = transition_all(
        Order,
        [Order.session_id == session.id],
        OrderStatus.PAID,
        OrderStatus.REFUNDED,
        actor=actor,
        note=_("Session cancelled by the creator."),
        holds_seat=False,
    )
    held = select(func.count()).where(Order.session_id == session.id, Order.holds_seat.is_(True)).scalar_subquery()
    db.session.execute(
        update(LiveSession)
        .where(LiveSession.id == session.id)
        .values(seats_taken=held)
        .execution_options(synchronize_session=False)
    )
    cancel_session_enrollments(session)
    _plan_remaining_refunds(session, "session_cancelled")
    db.session.commit()
    return len(refunded)


def _plan_remaining_refunds(session: LiveSession, reason: str) -> None:
    """A refund of what is still owed on each refunded order of the session that was paid (one read, one insert)."""
    outstanding = func.coalesce(func.sum(Refund.amount).filter(Refund.status.in_(OUTSTANDING)), 0)
    owed = db.session.execute(
        select(Order.id, Order.provider, Order.currency, Order.amount - outstanding)
        .outerjoin(Refund, Refund.order_id == Order.id)
        .where(Order.session_id == session.id, Order.status == OrderStatus.REFUNDED, Order.payment_ref.is_not(None))
        .group_by(Order.id, Order.provider, Order.currency, Order.amount)
        .having(Order.amount - outstanding > 0)
    ).all()
    now = utcnow()
    if owed:
        db.session.execute(
            insert(Refund),
            [
                {"order_id": order_id, "provider": provider, "amount": amount, "currency": currency, "reason": reason,
                 "status": RefundStatus.PENDING, "idempotency_key": _new_key(order_id),
                 "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now}
                for order_id, provider, currency, amount in owed
            ],
        )  # fmt: skip


def refund_progress(session: LiveSession) -> RefundProgress:
    refunds = db.session.scalars(
        select(Refund)
        .join(Order, Order.id == Refund.order_id)
        .where(Order.session_id == session.id)
        .order_by(Refund.id)
    ).all()
    refunds = [r for r in refunds if r.status != RefundStatus.CANCELLED]  # superseded, not part of the work
    return RefundProgress(
        total=len(refunds),
        succeeded=sum(r.status == RefundStatus.SUCCEEDED for r in refunds),
        pending=sum(r.status == RefundStatus.PENDING for r in refunds),
        failed=[r for r in refunds if r.status == RefundStatus.FAILED],
    )


def retry_refund(refund: Refund) -> None:
    """The creator's "retry" on a refund the provider refused (the cause fixed): it is sent again. Commits.

    Only what is still to give back goes (`_fit_to_balance`, under the order's lock): a refund that later refunds
    made unnecessary is cancelled (Conflict, with the reason), one larger than what is left is replaced.
    """
    order = _hold_order(refund.order_id)
    refund = db.session.get(Refund, refund.id, populate_existing=True)
    if refund.status != RefundStatus.FAILED:
        db.session.rollback()
        raise Conflict(_("Only a failed refund can be retried."))
    to_send = _fit_to_balance(order, refund, "creator")
    if to_send is None:
        db.session.commit()
        raise Conflict(refund.last_error)
    if to_send is refund:
        transition(refund, RefundStatus.PENDING, attempts=0, next_attempt_at=utcnow())
        note(order, "creator", _("Failed refund sent again."))
    db.session.commit()


# -- reconciliation ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    order_id: int
    provider: str
    payment_ref: str
    problem: str  # a stable word: paid_here_not_there, refunded_there_not_here, refunded_here_not_there, ...
    ours: str
    theirs: str


def reconcile(start: datetime, end: datetime) -> list[Mismatch]:
    """Ask the providers about every payment confirmed in [start, end) and list where they and we disagree.

    Reads only: fixing a difference is a person's decision (a refund made elsewhere is applied by its webhook).
    """
    orders = db.session.scalars(
        select(Order)
        .where(Order.paid_at >= start, Order.paid_at < end, Order.payment_ref.is_not(None))
        .order_by(Order.id)
    ).all()
    found: list[Mismatch] = []
    for order in orders:
        provider = get_provider_or_none(order.provider)
        if provider is None or not hasattr(provider, "payment_record"):
            continue
        ours_refunded = _succeeded(order)
        ours = f"{order.status}, {order.amount} {order.currency}, refunded {ours_refunded}"

        def add(problem: str, theirs: str, order: Order = order, ours: str = ours) -> None:
            found.append(Mismatch(order.id, order.provider, order.payment_ref, problem, ours, theirs))

        try:
            record = provider.payment_record(order.payment_ref)
        except (ProviderError, ServiceError) as error:
            add("provider_unreachable", str(error))
            continue
        theirs = f"{'paid' if record.paid else 'not paid'}, {record.amount} {record.currency}, refunded " + (
            "in part" if record.refunded is None else str(record.refunded)
        )
        if not record.paid:
            add("paid_here_not_there", theirs)
        elif record.amount != order.amount or (record.currency or "") != order.currency:
            add("amount_differs", theirs)
        elif record.fully_refunded and order.status != OrderStatus.REFUNDED:
            add("refunded_there_not_here", theirs)
        elif order.status == OrderStatus.REFUNDED and not record.fully_refunded and ours_refunded >= order.amount:
            add("refunded_here_not_there", theirs)
        elif record.refunded is not None and record.refunded != ours_refunded and order.status != OrderStatus.REFUNDED:
            add("refunded_there_not_here" if record.refunded > ours_refunded else "refunded_here_not_there", theirs)
        elif record.refunded is None and ours_refunded == 0:
            add("refunded_there_not_here", theirs)
    db.session.commit()
    return found


def get_provider_or_none(name: str):
    try:
        return get_provider(name)
    except ServiceError:
        return None
