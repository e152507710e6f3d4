"""Planning the emails: services plan, move or cancel outbox rows in their own transaction; they never send.

Every email the app will ever send is an `OutboxMessage`, UNIQUE per (order, kind), so a message can never be
planned twice; one that must go out again (a resend, a second move) is the same row armed again. What touches a
whole session is one statement per kind of change, whatever the number of attendees.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import (
    Exists,
    ScalarSelect,
    Select,
    String,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from ...config import settings
from ...extensions import db
from ...models import Creator, LiveSession, Order, OrderStatus, OutboxMessage, OutboxStatus, UTCDateTime, utcnow
from .. import Conflict, NotFound
from ..state import ConcurrentUpdate, transition
from .kinds import (
    ACCOUNT_KINDS,
    CANCELLED,
    CONFIRMATION,
    DATA_EXPORT,
    JOIN_LINK,
    MISSED_YOU,
    NOTICES,
    REFUND,
    REMINDER,
    SESSION_MOVED,
    THANK_YOU,
    ends_at,
    later,
    reminder_kind,
    template_of,
)

_WAITING = (OutboxStatus.PENDING, OutboxStatus.FAILED)  # what a cancellation cancels; a claimed row is the dispatcher's


def plan_account_message(creator: Creator, kind: str, to_address: str, now: datetime | None = None) -> OutboxMessage:
    """A creator's own message (`kinds.ACCOUNT_KINDS`), due at once; the caller commits. Its link is made when it is
    sent, from the row's creation time (`account_links`)."""
    assert kind in ACCOUNT_KINDS
    now = now or utcnow()
    row = OutboxMessage(
        creator_id=creator.id, to_address=to_address, kind=kind, due_at=now, created_at=now,
        status=OutboxStatus.PENDING, attempts=0,
    )  # fmt: skip
    db.session.add(row)
    return row


def account_messages_since(creator: Creator, kind: str, since: datetime) -> int:
    """How many messages of `kind` were planned for the creator since `since` (to cap reset requests)."""
    return db.session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.creator_id == creator.id, OutboxMessage.kind == kind, OutboxMessage.created_at >= since
        )
    )


def _rows(order: Order) -> dict[str, OutboxMessage]:
    return {
        row.kind: row for row in db.session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order.id))
    }


def _next_sequence(rows: dict[str, OutboxMessage]) -> int:
    return max((row.ics_sequence for row in rows.values()), default=-1) + 1


def _arm(rows: dict[str, OutboxMessage], order: Order, kind: str, due_at: datetime, sequence: int = 0) -> None:
    """Plan `kind` for `due_at`: a new row, or an old one armed again (another move, a resend)."""
    row = rows.get(kind)
    if row is None:
        row = OutboxMessage(
            order_id=order.id, kind=kind, due_at=due_at, status=OutboxStatus.PENDING, attempts=0, ics_sequence=sequence
        )
        db.session.add(row)
        rows[kind] = row
        return
    if row.status == OutboxStatus.SENDING:
        return  # the dispatcher has it; it will go out as claimed
    if row.status == OutboxStatus.PENDING:
        row.due_at = due_at
        row.ics_sequence = max(row.ics_sequence, sequence)
        return
    transition(
        row, OutboxStatus.PENDING, attempts=0, last_error=None, claimed_at=None, due_at=due_at,
        ics_sequence=max(row.ics_sequence, sequence),
    )  # fmt: skip


def _cancel(row: OutboxMessage, reason: str) -> None:
    """Conditional, so a row a dispatcher claimed meanwhile is left to it (it re-checks the order itself)."""
    if row.status not in _WAITING:
        return
    with contextlib.suppress(ConcurrentUpdate):
        transition(row, OutboxStatus.CANCELLED, last_error=reason)


def _thank_you_due(session: LiveSession) -> datetime:
    grace = timedelta(minutes=settings().THANK_YOU_GRACE_MINUTES)
    ended_at = session.ended_at  # set from Zoom's meeting.ended
    return later(ended_at or ends_at(session), grace)


def _plan_schedule(rows: dict[str, OutboxMessage], order: Order, session: LiveSession, now: datetime) -> None:
    """Reminders still ahead and the thank-you; reminders whose time has passed are skipped, never sent late."""
    wanted = set()
    for minutes in sorted(set(session.reminder_offsets or [])):
        kind, due_at = reminder_kind(minutes), session.starts_at - timedelta(minutes=minutes)
        if due_at > now:
            wanted.add(kind)
            _arm(rows, order, kind, due_at)
    for kind, row in rows.items():
        if template_of(kind) == REMINDER and kind not in wanted:
            _cancel(row, "reminder time passed or removed")
    thank_you = rows.get(THANK_YOU)
    if MISSED_YOU not in rows and (thank_you is None or thank_you.status == OutboxStatus.PENDING):
        _arm(rows, order, THANK_YOU, _thank_you_due(session))


def plan_messages(order: Order, now: datetime | None = None) -> None:
    """The order just became paid: confirmation now, reminders still ahead, thank-you after the end.

    Idempotent (kinds already planned stay as they are). The caller commits.
    """
    now = now or utcnow()
    session = order.session
    rows = _rows(order)
    if CONFIRMATION not in rows:
        _arm(rows, order, CONFIRMATION, now)
    _plan_schedule(rows, order, session, now)


def plan_join_link_message(order: Order, now: datetime | None = None) -> bool:
    """Enrolment just succeeded. If the confirmation already went out saying "your link follows", send the link.

    Returns whether a message was planned. The caller commits.
    """
    now = now or utcnow()
    rows = _rows(order)
    confirmation = rows.get(CONFIRMATION)
    if order.status != OrderStatus.PAID or JOIN_LINK in rows or confirmation is None:
        return False
    if confirmation.status == OutboxStatus.PENDING:
        return False  # it has not been written yet, and will carry the link itself
    _arm(rows, order, JOIN_LINK, now, sequence=confirmation.ics_sequence)
    return True


# -- changes to many messages at once ---------------------------------------------------------------------------------
# A session's move or cancellation touches every attendee's messages. Each kind of change is one statement for the
# whole session (an UPDATE, or an INSERT ... SELECT of the rows still missing), whatever the number of attendees:
# the same rules as `_arm` and `_cancel`, written in SQL.


def _paid_order_ids(session: LiveSession) -> Select:
    return select(Order.id).where(Order.session_id == session.id, Order.status == OrderStatus.PAID)


def _planned_order_ids(session: LiveSession) -> Select:
    """Paid orders that have messages planned (every order paid since the outbox exists)."""
    other = aliased(OutboxMessage)
    return _paid_order_ids(session).where(exists().where(other.order_id == Order.id))


def _has(kind, order_id, status: OutboxStatus | None = None) -> Exists:
    """Whether the order `order_id` (a column of the statement at hand) has a message of `kind` (a kind, or a
    column of kinds), in `status` if given."""
    other = aliased(OutboxMessage, name="other")
    conditions = [other.order_id == order_id, other.kind == kind]
    if status is not None:
        conditions.append(other.status == status)
    return exists().where(*conditions)


def _next_sequence_of(order_id) -> ScalarSelect:
    """One more than the highest invitation SEQUENCE among the order's messages (0 without any)."""
    other = aliased(OutboxMessage)
    return (
        select(func.coalesce(func.max(other.ics_sequence), -1) + 1).where(other.order_id == order_id).scalar_subquery()
    )


def _forget_loaded_messages() -> None:
    """Set-based changes bypass the objects this session holds: make it read them again on next use."""
    for loaded in list(db.session.identity_map.values()):
        if isinstance(loaded, OutboxMessage):
            db.session.expire(loaded)


def _update(*conditions, **values) -> int:
    result = db.session.execute(
        update(OutboxMessage).where(*conditions).values(**values).execution_options(synchronize_session=False)
    )
    _forget_loaded_messages()
    return result.rowcount


def _cancel_all(order_ids: Select, reason: str, *conditions) -> int:
    """`_cancel` for every matching message of these orders."""
    return _update(
        OutboxMessage.order_id.in_(order_ids), OutboxMessage.status.in_(_WAITING), *conditions,
        status=OutboxStatus.CANCELLED, last_error=reason,
    )  # fmt: skip


def _rearm_all(order_ids: Select, kinds: Mapping[str, datetime], sequence=None) -> int:
    """`_arm` for the existing rows of `kinds` (kind -> due time): pending again unless claimed, due at that time."""
    if not kinds:
        return 0
    was_pending = OutboxMessage.status == OutboxStatus.PENDING
    values: dict[str, Any] = {
        "status": OutboxStatus.PENDING,
        "attempts": case((was_pending, OutboxMessage.attempts), else_=0),
        "last_error": case((was_pending, OutboxMessage.last_error), else_=None),
        "claimed_at": None,
        "due_at": case({kind: _due(due_at) for kind, due_at in kinds.items()}, value=OutboxMessage.kind),
    }
    if sequence is not None:
        values["ics_sequence"] = sequence
    return _update(
        OutboxMessage.order_id.in_(order_ids),
        OutboxMessage.kind.in_(list(kinds)),
        OutboxMessage.status != OutboxStatus.SENDING,
        **values,
    )


def _due(moment: datetime):
    return literal(moment, UTCDateTime())


def _plan_missing(
    order_ids: Select, kinds: Mapping[str, datetime], *, sequence: str | None = None, unless: str | None = None
) -> int:
    """`_arm` for the orders that have no row of a kind yet (nor of kind `unless`): one INSERT ... SELECT.

    `sequence="next"` gives each new row the order's next invitation SEQUENCE, else 0.
    """
    if not kinds:
        return 0
    planned = union_all(
        *(select(literal(kind, String(40)).label("kind"), _due(due).label("due_at")) for kind, due in kinds.items())
    ).subquery("planned")
    orders = order_ids.subquery("orders_concerned")
    now = utcnow()
    rows = (
        select(
            orders.c.id,
            planned.c.kind,
            planned.c.due_at,
            literal(OutboxStatus.PENDING.value, String(20)),
            literal(0),
            _next_sequence_of(orders.c.id) if sequence == "next" else literal(0),
            _due(now),
            _due(now),
        )
        .select_from(orders)
        .join(planned, true())
        .where(~_has(planned.c.kind, orders.c.id))
    )
    if unless:
        rows = rows.where(~_has(unless, orders.c.id))
    columns = ["order_id", "kind", "due_at", "status", "attempts", "ics_sequence", "created_at", "updated_at"]
    result = db.session.execute(insert(OutboxMessage).from_select(columns, rows, include_defaults=False))
    return result.rowcount


def cancel_messages(order: Order, notice: str | None = None, now: datetime | None = None) -> None:
    """Cancel what is still pending for the order; `notice` (`refund` or `cancelled`) is then sent. Caller commits."""
    if notice not in {None, REFUND, CANCELLED}:
        raise ValueError(f"unknown notice {notice!r}")
    order_ids = select(Order.id).where(Order.id == order.id)
    _cancel_all(order_ids, f"order {order.status}", OutboxMessage.kind.not_in(sorted(NOTICES)))
    if notice:
        _plan_missing(order_ids, {notice: now or utcnow()}, sequence="next")


def move_messages(session: LiveSession, notify: bool = True, now: datetime | None = None) -> int:
    """The session's time, length or reminder offsets changed: re-plan every paid attendee's messages.

    With `notify`, each attendee who already heard from us gets an update with the new time (and a
    new .ics SEQUENCE). Returns the number of attendees re-planned. The caller commits.
    """
    now = now or utcnow()
    orders = _planned_order_ids(session)
    # Reminders still ahead, armed again or planned; the others cancelled (never sent late).
    reminders = {reminder_kind(minutes): session.starts_at - timedelta(minutes=minutes)
                 for minutes in sorted(set(session.reminder_offsets or []))}  # fmt: skip
    reminders = {kind: due_at for kind, due_at in reminders.items() if due_at > now}
    _cancel_all(
        orders, "reminder time passed or removed",
        OutboxMessage.kind.like(f"{REMINDER}:%"), OutboxMessage.kind.not_in(list(reminders)),
    )  # fmt: skip
    _rearm_all(orders, reminders)
    _plan_missing(orders, reminders)
    # The thank-you follows the end, unless "sorry we missed you" replaced it or it went out already.
    thank_you = _thank_you_due(session)
    _update(
        OutboxMessage.order_id.in_(orders), OutboxMessage.kind == THANK_YOU,
        OutboxMessage.status == OutboxStatus.PENDING, ~_has(MISSED_YOU, OutboxMessage.order_id),
        due_at=thank_you,
    )  # fmt: skip
    _plan_missing(orders, {THANK_YOU: thank_you}, unless=MISSED_YOU)
    if notify:
        # A confirmation not sent yet carries the new time itself; the others get the update.
        unsent = _has(CONFIRMATION, Order.id, OutboxStatus.PENDING)
        _update(
            OutboxMessage.order_id.in_(orders), OutboxMessage.kind == CONFIRMATION,
            OutboxMessage.status == OutboxStatus.PENDING,
            ics_sequence=_next_sequence_of(OutboxMessage.order_id),
        )  # fmt: skip
        told = orders.where(~unsent)
        _rearm_all(told, {SESSION_MOVED: now}, sequence=_next_sequence_of(OutboxMessage.order_id))
        _plan_missing(told, {SESSION_MOVED: now}, sequence="next")
    return db.session.scalar(select(func.count()).select_from(orders.subquery()))


def session_cancelled(session: LiveSession, now: datetime | None = None) -> int:
    """Every paid attendee: pending messages cancelled, a cancellation email planned. The caller commits."""
    orders = _paid_order_ids(session)
    _cancel_all(orders, "session cancelled", OutboxMessage.kind.not_in(sorted(NOTICES)))
    _plan_missing(orders, {CANCELLED: now or utcnow()}, sequence="next")
    return db.session.scalar(select(func.count()).select_from(orders.subquery()))


def session_ended(session: LiveSession, now: datetime | None = None) -> int:
    """Zoom says the session ended: pending thank-yous go out after the grace period from now. Caller commits."""
    now = now or utcnow()
    due_at = now + timedelta(minutes=settings().THANK_YOU_GRACE_MINUTES)
    return _update(
        OutboxMessage.order_id.in_(_paid_order_ids(session)), OutboxMessage.kind == THANK_YOU,
        OutboxMessage.status == OutboxStatus.PENDING,
        due_at=due_at,
    )  # fmt: skip


def resend(order: Order, kind: str = CONFIRMATION, now: datetime | None = None) -> OutboxMessage:
    """The creator asks to send a message again (the attendee lost it). Commits."""
    if order.status != OrderStatus.PAID:
        raise Conflict(_("Only a paid order's messages can be sent again."))
    if order.erased_at is not None:
        raise Conflict(_("This attendee's personal data was erased: nothing can be sent to them."))
    rows = _rows(order)
    if kind not in rows:
        raise NotFound(_("This message was never planned for this attendee."))
    if rows[kind].status == OutboxStatus.SENDING:
        raise Conflict(_("This message is being sent right now."))
    try:
        _arm(rows, order, kind, now or utcnow())
    except ConcurrentUpdate:  # a second click at the same moment armed it first: it goes out once, as asked
        db.session.rollback()
        return db.session.get(OutboxMessage, rows[kind].id)
    db.session.commit()
    return rows[kind]


# An attendee may have their data emailed to them once in this long: the button cannot flood their mailbox.
DATA_EXPORT_INTERVAL = timedelta(hours=24)


class ExportTooSoon(Conflict):
    code = "rate_limited"
    http_status = 429


def cancel_all_messages(order: Order, reason: str) -> int:
    """Cancel every message of the order not sent yet, notices and claimed ones included (a dispatcher holding one
    then loses its claim: nothing of it is recorded). Caller commits."""
    return _update(
        OutboxMessage.order_id == order.id,
        OutboxMessage.status.in_([*_WAITING, OutboxStatus.SENDING]),
        status=OutboxStatus.CANCELLED,
        last_error=reason,
        claimed_at=None,
    )


def plan_data_export(order: Order, now: datetime | None = None) -> OutboxMessage:
    """The attendee asked for their data by email (the export goes as an attachment, built when it is sent), at most
    once per `DATA_EXPORT_INTERVAL`. Commits; raises `ExportTooSoon` (429) before then."""
    now = now or utcnow()
    rows = _rows(order)
    row = rows.get(DATA_EXPORT)
    if row is not None:
        if row.status in (OutboxStatus.PENDING, OutboxStatus.SENDING):
            raise ExportTooSoon(_("Your data is on its way to your email address already."))
        last = row.sent_at or row.updated_at
        if row.status == OutboxStatus.SENT and last is not None and now < last + DATA_EXPORT_INTERVAL:
            raise ExportTooSoon(
                _("Your data was emailed to you less than a day ago. You can ask again 24 hours after that email.")
            )
    try:
        _arm(rows, order, DATA_EXPORT, now)
        db.session.commit()
    except (ConcurrentUpdate, IntegrityError):  # a second click at the same moment planned it first
        db.session.rollback()
        raise ExportTooSoon(_("Your data is on its way to your email address already.")) from None
    return rows[DATA_EXPORT]


def delivery_log(session: LiveSession) -> dict[int, list[OutboxMessage]]:
    """Per order id, its messages in the order they are due."""
    rows = db.session.scalars(
        select(OutboxMessage)
        .join(Order, Order.id == OutboxMessage.order_id)
        .where(Order.session_id == session.id)
        .order_by(OutboxMessage.order_id, OutboxMessage.due_at, OutboxMessage.id)
    )
    log_by_order: dict[int, list[OutboxMessage]] = {}
    for row in rows:
        log_by_order.setdefault(row.order_id, []).append(row)
    return log_by_order
