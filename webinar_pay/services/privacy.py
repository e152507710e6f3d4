"""Attendees' data as the law asks: erasure (on request, after the retention period, with the creator's account),
the attendee's own export by email, and the deletion of a creator's account.

Erasing replaces the personal fields with placeholders in one transaction per attendee: name, email and client
hash of the orders, the copies of sent emails, the payer's details in the payment providers' stored events, the
enrolment's join URL and (once Zoom has cancelled it) registrant id. Emails not sent yet are cancelled, the ticket
and join links answer 410, and the Zoom registrant is cancelled by the enrolment tick. Amounts, dates, statuses and
provider references stay: the creator's accounts need them. Erasing is idempotent and cannot be undone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import delete, exists, func, or_, select, update
from werkzeug.security import check_password_hash

from ..config import settings
from ..extensions import db
from ..models import (
    ApiToken,
    Creator,
    LiveSession,
    Order,
    OrderLog,
    OrderStatus,
    OutboxMessage,
    ProviderEvent,
    Refund,
    RefundStatus,
    SessionStatus,
    utcnow,
)
from . import Conflict, ValidationError
from .enrollment import cancel_enrollment
from .jobs import worker_context
from .outbox.kinds import ends_at, later
from .outbox.planning import cancel_all_messages, plan_data_export
from .personal_data import ERASED_EMAIL, ERASED_NAME, ERASED_TEXT, attendee_orders, scrub, scrub_text
from .seats import lock_order
from .state import ConcurrentUpdate, transition

log = logging.getLogger(__name__)

ERASED_NOTE = "personal data erased; amounts, dates, statuses and provider references kept for accounting"
RETENTION_ACTOR = "retention (ATTENDEE_RETENTION_DAYS)"
ACCOUNT_DELETED_ACTOR = "creator account deleted"
DELETED_CREATOR_NAME = "Deleted account"
NO_PASSWORD = "!"  # noqa: S105 - not a secret: a hash that no password matches


# -- erasure ---------------------------------------------------------------------------------------------------------


def _erase_order(order: Order, actor: str, now: datetime) -> bool:
    """Erase one order's personal data in the caller's transaction; False when it was erased already."""
    order = lock_order(order)
    if order.erased_at is not None:
        return False
    email = order.email
    written = db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.erased_at.is_(None))
        .values(name=ERASED_NAME, email=ERASED_EMAIL, client_hash=None, erased_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if written.rowcount != 1:
        raise ConcurrentUpdate(f"order {order.id} changed while being erased")
    db.session.refresh(order)
    cancel_all_messages(order, "personal data erased")
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.order_id == order.id, OutboxMessage.sent_to.is_not(None))
        .values(sent_to=ERASED_EMAIL, sent_text=ERASED_TEXT, sent_html=ERASED_TEXT, sent_ics=ERASED_TEXT)
        .execution_options(synchronize_session=False)
    )
    for message in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.order_id == order.id, OutboxMessage.last_error.is_not(None))
    ):
        message.last_error = scrub_text(message.last_error, [email])
    enrollment = cancel_enrollment(order)
    if enrollment is not None:
        enrollment.join_url = None
        enrollment.last_error = scrub_text(enrollment.last_error, [email])
        if enrollment.next_attempt_at is None:  # no Zoom cancellation to come: the registrant id is not needed
            enrollment.registrant_id = None
    for event in db.session.scalars(select(ProviderEvent).where(ProviderEvent.order_id == order.id)):
        try:
            event.payload = json.dumps(scrub(json.loads(event.payload), [email]))
        except ValueError:
            event.payload = ERASED_TEXT
    for refund in db.session.scalars(select(Refund).where(Refund.order_id == order.id, Refund.last_error.is_not(None))):
        refund.last_error = scrub_text(refund.last_error, [email])
    for entry in db.session.scalars(select(OrderLog).where(OrderLog.order_id == order.id)):
        entry.note = scrub_text(entry.note, [email]) or ""
    db.session.add(
        OrderLog(order_id=order.id, from_status=order.status, to_status=order.status, actor=actor, note=ERASED_NOTE)
    )
    return True


def erase_attendee(order: Order, actor: str, now: datetime | None = None) -> list[int]:
    """Erase the attendee of `order` at its creator: every order of theirs (the same email), in one transaction.

    Returns the ids of the orders erased now (none when they were erased before). Refused (409) while one of their
    checkouts is still pending: its payment could still arrive. Commits.
    """
    now = now or utcnow()
    orders = attendee_orders(order)
    if any(each.status == OrderStatus.PENDING for each in orders):
        raise Conflict(
            _("A checkout of this attendee is still open. Try again once it is paid or has expired (within an hour).")
        )
    try:
        erased = [each.id for each in orders if _erase_order(each, actor, now)]
        db.session.commit()
    except ConcurrentUpdate:
        db.session.rollback()
        raise Conflict(_("This order changed at the same moment. Please try again.")) from None
    if erased:
        log.info("erased the personal data of orders %s (%s)", erased, actor)
    return erased


# -- retention -------------------------------------------------------------------------------------------------------


def retention_days() -> int:
    return settings().ATTENDEE_RETENTION_DAYS


def erasure_date(session: LiveSession) -> datetime | None:
    """When the retention job erases the session's attendees (its planned end plus the retention); None: never."""
    days = retention_days()
    return later(ends_at(session), timedelta(days=days)) if days > 0 else None


def _has_personal_data():
    return exists().where(
        Order.session_id == LiveSession.id, Order.erased_at.is_(None), Order.status != OrderStatus.PENDING
    )


def _due_sessions(now: datetime, limit: int) -> list[LiveSession]:
    """Sessions whose attendees are due for erasure: ended more than the retention ago, or of a deleted creator.

    The start bounds the query (an index); the end, a start plus at most a day, is checked here. Oldest first, so
    a session not due yet (a long one) comes after the due ones.
    """
    days = retention_days()
    due_by_age = LiveSession.starts_at < now - timedelta(days=days) if days > 0 else None
    deleted = LiveSession.creator_id.in_(select(Creator.id).where(Creator.deleted_at.is_not(None)))
    condition = deleted if due_by_age is None else or_(due_by_age, deleted)
    sessions = db.session.scalars(
        select(LiveSession).where(condition, _has_personal_data()).order_by(LiveSession.starts_at).limit(limit)
    ).all()
    creators_gone = {
        creator_id
        for creator_id in db.session.scalars(
            select(Creator.id).where(Creator.id.in_({s.creator_id for s in sessions}), Creator.deleted_at.is_not(None))
        )
    }
    return [
        s
        for s in sessions
        if s.creator_id in creators_gone or (days > 0 and later(ends_at(s), timedelta(days=days)) <= now)
    ]


def erase_expired_attendees(now: datetime | None = None, limit: int = 100) -> int:
    """The worker's job: erase up to `limit` orders of sessions that ended longer ago than `ATTENDEE_RETENTION_DAYS`
    (0: never) and of deleted creators' sessions. Returns how many orders were erased.

    Each order is erased in its own transaction by a conditional UPDATE (`erased_at IS NULL`), so workers running
    the job at once erase each order once; no claim is needed. Pending orders wait for the holds job.
    """
    now = now or utcnow()
    sessions = _due_sessions(now, 50)
    if not sessions:
        db.session.rollback()
        return 0
    gone = set(db.session.scalars(select(Creator.id).where(Creator.deleted_at.is_not(None))))
    order_ids = list(
        db.session.scalars(
            select(Order.id)
            .where(
                Order.session_id.in_([s.id for s in sessions]),
                Order.erased_at.is_(None),
                Order.status != OrderStatus.PENDING,
            )
            .order_by(Order.id)
            .limit(limit)
        )
    )
    actor_of = {s.id: ACCOUNT_DELETED_ACTOR if s.creator_id in gone else RETENTION_ACTOR for s in sessions}
    db.session.commit()
    erased = _erase_each(order_ids, lambda order: actor_of[order.session_id], now)
    if erased:
        log.info("retention: erased the personal data of %d orders", erased)
    return erased


def _erase_each(order_ids: list[int], actor: Callable[[Order], str], now: datetime) -> int:
    """Erase each order in its own transaction; an order changed by a payment event or another worker at the same
    moment is left for the next pass."""
    erased = 0
    with worker_context():
        for order_id in order_ids:
            order = db.session.get(Order, order_id)
            try:
                erased += _erase_order(order, actor(order), now)
                db.session.commit()
            except ConcurrentUpdate:
                db.session.rollback()
    return erased


# -- the attendee's own export ----------------------------------------------------------------------------------------


def email_my_data(order: Order, now: datetime | None = None) -> None:
    """The attendee asked, from their ticket page, for everything held about them: it goes to their email address as
    a JSON attachment, through the outbox, at most once a day (429 otherwise). Commits."""
    plan_data_export(order, now)


# -- the creator's account ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeletionBlocker:
    session: LiveSession
    reason: str


class AccountDeletionBlocked(Conflict):
    code = "account_deletion_blocked"


def deletion_blockers(creator: Creator, now: datetime | None = None) -> list[DeletionBlocker]:
    """What stops the account's deletion, per session: attendees of a session not over yet (paid or registered
    free), a payment in progress, a disputed payment, refunds still on their way."""
    now = now or utcnow()
    counts: dict[tuple[int, str], int] = {
        (session_id, status): count
        for session_id, status, count in db.session.execute(
            select(Order.session_id, Order.status, func.count(Order.id))
            .join(LiveSession, LiveSession.id == Order.session_id)
            .where(LiveSession.creator_id == creator.id)
            .group_by(Order.session_id, Order.status)
        )
    }
    refunds_open: dict[int, int] = dict(
        db.session.execute(
            select(Order.session_id, func.count(Refund.id))
            .join(Order, Order.id == Refund.order_id)
            .join(LiveSession, LiveSession.id == Order.session_id)
            .where(
                LiveSession.creator_id == creator.id,
                Refund.status.in_([RefundStatus.PENDING, RefundStatus.FAILED]),
            )
            .group_by(Order.session_id)
        ).all()
    )
    blockers = []
    for session in sorted(creator.sessions, key=lambda s: s.starts_at):
        paid = counts.get((session.id, OrderStatus.PAID), 0)
        if paid and ends_at(session) > now:
            blockers.append(DeletionBlocker(session, ngettext(
                "%(num)d attendee holds a seat and the session has not taken place yet: cancel it (this refunds "
                "them) or wait until it has ended.",
                "%(num)d attendees hold a seat and the session has not taken place yet: cancel it (this refunds "
                "them) or wait until it has ended.",
                paid,
            )))  # fmt: skip
        if counts.get((session.id, OrderStatus.PENDING), 0):
            blockers.append(DeletionBlocker(session, _("A buyer is paying right now: try again within an hour.")))
        if counts.get((session.id, OrderStatus.DISPUTED), 0):
            blockers.append(DeletionBlocker(session, _("A payment is disputed: wait until the dispute is decided.")))
        if refunds_open.get(session.id):
            blockers.append(DeletionBlocker(session, _("Refunds are still on their way (or failed): settle them.")))
    return blockers


def delete_creator(creator: Creator, password: str, now: datetime | None = None) -> int:
    """Delete the creator's account once nothing blocks it (`deletion_blockers`), after checking their password.

    Their sessions not over yet are cancelled (none has attendees), their API tokens deleted, and their row
    anonymised: it stays, with the sessions, orders and amounts, for the accounts. Their attendees' personal data is
    erased: a first batch here, the rest by the worker's retention job within a few ticks. Returns how many orders
    were erased here. Commits.
    """
    now = now or utcnow()
    if not check_password_hash(creator.password_hash, password or ""):
        message = _("Wrong password.")
        raise ValidationError(message, fields={"password": message})
    blockers = deletion_blockers(creator, now)
    if blockers:
        titles = ", ".join(sorted({f"“{b.session.title}”" for b in blockers}))
        raise AccountDeletionBlocked(_("Your account cannot be deleted yet, because of: %(titles)s.", titles=titles))
    for session in creator.sessions:
        if session.status in (SessionStatus.DRAFT, SessionStatus.PUBLISHED) and ends_at(session) > now:
            transition(session, SessionStatus.CANCELLED)
    db.session.execute(delete(ApiToken).where(ApiToken.creator_id == creator.id))
    creator.email = f"deleted-{creator.id}@erased.invalid"
    creator.name = DELETED_CREATOR_NAME
    creator.password_hash = NO_PASSWORD
    creator.reply_to = creator.brand_colour = creator.logo_url = None
    creator.zoom_user_id = creator.zoom_user_email = None
    creator.deleted_at = now
    db.session.commit()
    log.info("creator %s deleted their account", creator.id)
    order_ids = db.session.scalars(
        select(Order.id)
        .join(LiveSession, LiveSession.id == Order.session_id)
        .where(LiveSession.creator_id == creator.id, Order.erased_at.is_(None), Order.status != OrderStatus.PENDING)
        .order_by(Order.id)
        .limit(200)
    ).all()
    db.session.commit()
    return _erase_each(list(order_ids), lambda _order: ACCOUNT_DELETED_ACTOR, now)
