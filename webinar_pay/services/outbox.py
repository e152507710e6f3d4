"""Emails on schedule. Services plan, move or cancel outbox rows in their own transaction; one dispatcher sends.

Every email the app will ever send is an `OutboxMessage`, UNIQUE per (order, kind), so a message can
never be planned twice. The dispatcher claims due rows atomically (SKIP LOCKED on PostgreSQL, one
conditional UPDATE per row on SQLite), sends a batch over one SMTP connection and marks each row
sent as soon as the server took it. Claims left behind by a worker that died are taken back after
`OUTBOX_CLAIM_TIMEOUT_SECONDS`, so nothing is lost; a crash between the server's "250 OK" and our
commit can still send that one message twice, which is the price of never losing one.

Reminders are a number of minutes before the session's UTC start, so they fall at the same instant
whatever the clocks do in between (a DST change moves the wall-clock time, not the gap).
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import current_app, render_template
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_mail import Connection, Message
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
from sqlalchemy.orm import aliased, selectinload

from integrations.mail import classify_smtp_error

from ..extensions import db, keep_loaded_across_commits
from ..models import (
    Creator,
    EnrollmentStatus,
    LiveSession,
    Order,
    OrderStatus,
    OutboxMessage,
    OutboxStatus,
    Refund,
    SessionStatus,
    UTCDateTime,
    utcnow,
)
from ..money import format_amount
from . import Conflict, NotFound
from .ics import Invitation, build_ics
from .jobs import backoff, claim_due, worker_context
from .state import ConcurrentUpdate, transition
from .tickets import join_link, ticket_url

log = logging.getLogger(__name__)

CONFIRMATION = "confirmation"
JOIN_LINK = "join_link"
REMINDER = "reminder"
THANK_YOU = "thank_you"
MISSED_YOU = "missed_you"
SESSION_MOVED = "session_moved"
CANCELLED = "cancelled"
REFUND = "refund"
NOTICES = {CANCELLED, REFUND}  # still sent once the order is no longer paid
TEMPLATES = (CONFIRMATION, JOIN_LINK, REMINDER, THANK_YOU, MISSED_YOU, SESSION_MOVED, CANCELLED, REFUND)
INVITE_KINDS = {CONFIRMATION, JOIN_LINK, SESSION_MOVED, CANCELLED, REFUND}
# Once Zoom says a session started, the thank-you waits for its real end, but never longer than this.
OVERRUN_LIMIT = timedelta(hours=6)


def reminder_kind(minutes: int) -> str:
    return f"{REMINDER}:{minutes}"


def reminder_minutes(kind: str) -> int | None:
    """60 for `reminder:60`; None for any other kind, or a reminder kind no session can have."""
    name, _sep, minutes = kind.partition(":")
    if name != REMINDER or not (minutes.isascii() and minutes.isdigit()) or len(minutes) > 6:
        return None
    return int(minutes)


def template_of(kind: str) -> str:
    return kind.split(":", 1)[0]


def _setting(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


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
    grace = timedelta(minutes=_setting("THANK_YOU_GRACE_MINUTES", 30))
    ended_at = session.ended_at  # set from Zoom's meeting.ended
    return _later(ended_at or _ends_at(session), grace)


def _later(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta`, stopping at the calendar's last instant rather than failing."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def _ends_at(session: LiveSession) -> datetime:
    return _later(session.starts_at, timedelta(minutes=session.duration_minutes))


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

_WAITING = (OutboxStatus.PENDING, OutboxStatus.FAILED)  # what a cancellation cancels; a claimed row is the dispatcher's


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
    due_at = now + timedelta(minutes=_setting("THANK_YOU_GRACE_MINUTES", 30))
    return _update(
        OutboxMessage.order_id.in_(_paid_order_ids(session)), OutboxMessage.kind == THANK_YOU,
        OutboxMessage.status == OutboxStatus.PENDING,
        due_at=due_at,
    )  # fmt: skip


def resend(order: Order, kind: str = CONFIRMATION, now: datetime | None = None) -> OutboxMessage:
    """The creator asks to send a message again (the attendee lost it). Commits."""
    if order.status != OrderStatus.PAID:
        raise Conflict(_("Only a paid order's messages can be sent again."))
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


# -- composing -------------------------------------------------------------------------------------------------


@dataclass
class Email:
    to: str
    subject: str
    text: str
    html: str
    reply_to: str | None = None
    ics: str | None = None
    has_join_link: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _when(moment: datetime, zone: str) -> str:
    """The instant in the zone, in words; an instant the zone cannot show (the calendar's edge) is given in UTC."""
    locale = str(get_locale() or "en")
    try:
        return format_datetime(moment, "EEEE d MMMM y, HH:mm zzzz", tzinfo=ZoneInfo(zone), locale=locale)
    except (OverflowError, ValueError, LookupError):
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _context(
    kind: str, order: Order, session: LiveSession, creator: Creator, join_url: str | None, ticket: str
) -> dict[str, Any]:
    minutes = reminder_minutes(kind)
    reply_to = creator.reply_to or creator.email
    return {
        "kind": kind,
        "order": order,
        "session": session,
        "creator": creator,
        "attendee_name": order.name,
        "creator_name": creator.name,
        "reply_to": reply_to,
        "brand_colour": creator.brand_colour or "#3b5bdb",
        "logo_url": creator.logo_url,
        "starts_local": _when(session.starts_at, session.timezone),
        "starts_utc": _when(session.starts_at, "UTC"),
        "ends_local": _when(_ends_at(session), session.timezone),
        "duration_minutes": session.duration_minutes,
        "amount": format_amount(order.amount, order.currency, locale=str(get_locale() or "en")) if order.amount else "",
        "join_url": join_url,
        "ticket_url": ticket,
        "replay_url": session.replay_url,
        "feedback_url": f"mailto:{reply_to}?subject=" + quote(_("Feedback: %(title)s", title=session.title)),
        "lead_time": _lead_time(minutes) if minutes is not None else "",
        "refund_reason": _refund_reason(order) if template_of(kind) == REFUND else "",
    }


def _refund_reason(order: Order) -> str:
    if not order.id:
        return ""
    reason = db.session.scalar(select(Refund.reason).where(Refund.order_id == order.id).order_by(Refund.id.desc()))
    if reason == "no_seat_left":
        return _("Your payment reached us after your seat's hold had run out, and the session was full by then.")
    return ""


def _lead_time(minutes: int) -> str:
    if minutes == 1440:
        return _("tomorrow at this time")
    if minutes % 1440 == 0:
        return ngettext("in %(num)d day", "in %(num)d days", minutes // 1440)
    if minutes == 60:
        return _("in one hour")
    if minutes % 60 == 0:
        return ngettext("in %(num)d hour", "in %(num)d hours", minutes // 60)
    return ngettext("in %(num)d minute", "in %(num)d minutes", minutes)


def _invitation(order: Order, session: LiveSession, creator: Creator, url: str, sequence: int, cancelled: bool):
    host = current_app.config["BASE_URL"].split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    return Invitation(
        uid=f"order-{order.id}@{host}",
        sequence=sequence,
        starts_at=session.starts_at,
        ends_at=_ends_at(session),
        summary=session.title,
        description=_("Your place: %(url)s", url=url),
        url=url,
        organizer_name=creator.name,
        organizer_email=creator.reply_to or creator.email,
        attendee_name=order.name,
        attendee_email=order.email,
        cancelled=cancelled,
    )


def render_email(
    kind: str, order: Order, session: LiveSession, *, join_url: str | None, ticket: str, sequence: int, now: datetime
) -> Email:
    """Subject, both bodies and the .ics of one message, from the templates under email/<kind>/."""
    creator = db.session.get(Creator, session.creator_id)
    context = _context(kind, order, session, creator, join_url, ticket)
    folder = f"email/{template_of(kind)}"
    subject = " ".join(render_template(f"{folder}/subject.txt", **context).split())
    email = Email(
        to=order.email,
        subject=subject,
        text=render_template(f"{folder}/body.txt", **context),
        html=render_template(f"{folder}/body.html", **context),
        reply_to=context["reply_to"],
        has_join_link=bool(join_url),
    )
    if template_of(kind) in INVITE_KINDS:
        cancelled = kind in NOTICES
        # Calendars get shared: the invitation carries the join link (which leads nowhere once the seat is gone),
        # never the ticket link, which can cancel the seat.
        url = join_link(order) if order.id else join_url or ticket
        email.ics = build_ics(_invitation(order, session, creator, url, sequence, cancelled), now)
    return email


def compose(message: OutboxMessage, now: datetime | None = None) -> Email:
    """The email an outbox row stands for, as it would be sent now."""
    now = now or utcnow()
    order = db.session.get(Order, message.order_id)
    session = db.session.get(LiveSession, order.session_id)
    enrollment = order.enrollment
    enrolled = enrollment is not None and enrollment.status == EnrollmentStatus.ENROLLED and enrollment.join_url
    with worker_context():  # links in emails need a request context; the dispatcher has none
        join_url = join_link(order) if enrolled and order.status == OrderStatus.PAID else None
        email = render_email(
            message.kind, order, session, join_url=join_url, ticket=ticket_url(order),
            sequence=message.ics_sequence, now=now,
        )  # fmt: skip
    email.headers["X-Webinar-Pay-Message"] = f"{message.order_id}:{message.kind}"
    email.headers["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a reminder
    return email


def preview(session: LiveSession, kind: str, now: datetime | None = None) -> Email:
    """What an attendee would receive, for the creator: a made-up attendee, nothing stored."""
    if kind == REMINDER:
        kind = reminder_kind((session.reminder_offsets or [60])[0])
    if kind not in TEMPLATES and reminder_minutes(kind) is None:
        raise NotFound(_("No such message."))
    sample = Order(
        id=0, session_id=session.id, name=_("Alex Example"), email="alex@example.com", amount=session.price,
        currency=session.currency, provider="preview", status=OrderStatus.PAID, token_nonce="0" * 32,
    )  # fmt: skip
    base = current_app.config["BASE_URL"]
    return render_email(
        kind, sample, session, join_url=base + "/j/preview", ticket=base + "/t/preview", sequence=0,
        now=now or utcnow(),
    )  # fmt: skip


def to_flask_message(email: Email) -> Message:
    message = Message(
        subject=email.subject,
        recipients=[email.to],
        body=email.text,
        html=email.html,
        reply_to=email.reply_to,
        extra_headers=dict(email.headers),
    )
    if email.ics:
        method = "CANCEL" if "METHOD:CANCEL" in email.ics else "REQUEST"
        message.attach("invite.ics", f"text/calendar; method={method}; charset=utf-8", email.ics.encode(), "attachment")
    return message


# -- the dispatcher --------------------------------------------------------------------------------------------


def recover_stale_claims(now: datetime | None = None) -> int:
    """Claims older than the timeout belong to a worker that died: give them back."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=_setting("OUTBOX_CLAIM_TIMEOUT_SECONDS", 600))
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_at < cutoff)
        .values(status=OutboxStatus.PENDING, claimed_at=None, last_error="claim expired: worker stopped mid-batch")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount:
        log.warning("took back %s outbox messages left in sending by a stopped worker", result.rowcount)
    return result.rowcount


def _claim(now: datetime, limit: int) -> list[int]:
    """Due messages, oldest first, now `sending` under this worker's claim (its time)."""
    claimed = claim_due(
        OutboxMessage,
        due=[OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.due_at <= now],
        claim={"status": OutboxStatus.SENDING, "claimed_at": now},
        order_by=[OutboxMessage.due_at, OutboxMessage.id],
        limit=limit,
        skip_locked=True,
    )
    return [row[0] for row in claimed]


def _still_wanted(message: OutboxMessage, now: datetime) -> str | None:
    """Why a claimed message must not go out any more, or None."""
    order = db.session.get(Order, message.order_id)
    session = db.session.get(LiveSession, order.session_id)
    if message.kind in NOTICES:
        return None
    if order.status != OrderStatus.PAID:
        return f"order {order.status}"
    if session.status == SessionStatus.CANCELLED:
        return "session cancelled"
    if template_of(message.kind) == REMINDER and now >= session.starts_at:
        return "too late: the session has started"
    return None


def _thank_you_not_yet(message: OutboxMessage, now: datetime) -> datetime | None:
    """Zoom said the session started and has not said it ended: wait a little longer (within reason)."""
    if message.kind != THANK_YOU:
        return None
    session = db.session.get(LiveSession, db.session.get(Order, message.order_id).session_id)
    started, ended = session.started_at, session.ended_at
    if started is not None and ended is None and now < _later(_ends_at(session), OVERRUN_LIMIT):
        return now + timedelta(minutes=_setting("THANK_YOU_GRACE_MINUTES", 30))
    return None


def _attendance_kind(message: OutboxMessage) -> None:
    """Attendees who never joined get "sorry we missed you" instead of the thank-you, once attendance is known."""
    if message.kind != THANK_YOU:
        return
    enrollment = db.session.get(Order, message.order_id).enrollment
    if enrollment is not None and enrollment.attended is False:
        taken = db.session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.order_id == message.order_id, OutboxMessage.kind == MISSED_YOU)
        )
        if taken is None:
            message.kind = MISSED_YOU


def _settle(message: OutboxMessage, to: OutboxStatus, **values: Any) -> None:
    """Record the outcome, but only while the claim is still ours (a slow worker may have been taken over)."""
    try:
        transition(message, to, fence={"claimed_at": message.claimed_at}, **values)
    except ConcurrentUpdate:
        log.warning("outbox message %s: claim lost before its outcome was recorded", message.id)
    db.session.commit()


def _retry_or_fail(message: OutboxMessage, now: datetime, reason: str, transient: bool) -> str:
    attempts = message.attempts + 1
    base = _setting("MAIL_RETRY_BASE_SECONDS", 60)
    cap = _setting("MAIL_RETRY_MAX_SECONDS", 3600)
    if transient and attempts < _setting("MAIL_MAX_ATTEMPTS", 8):
        _settle(
            message, OutboxStatus.PENDING, attempts=attempts, last_error=reason,
            due_at=now + backoff(attempts, base, cap), claimed_at=None,
        )  # fmt: skip
        return "retry"
    log.error("email %s to order %s failed for good: %s", message.kind, message.order_id, reason)
    _settle(message, OutboxStatus.FAILED, attempts=attempts, last_error=reason)
    return "failed"


def _release(message_ids: list[int]) -> None:
    """Claimed but not tried (the connection broke first): back to pending, no attempt counted."""
    if message_ids:
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(message_ids), OutboxMessage.status == OutboxStatus.SENDING)
            .values(status=OutboxStatus.PENDING, claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


@dataclass
class DispatchResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    recovered: int = 0


def dispatch_due(now: datetime | None = None, limit: int | None = None) -> DispatchResult:
    """Send every due message: claim, compose, send over one SMTP connection, record each outcome."""
    now = now or utcnow()
    result = DispatchResult(recovered=recover_stale_claims(now))
    claimed = _claim(now, limit or _setting("OUTBOX_BATCH_SIZE", 100))
    result.claimed = len(claimed)
    if not claimed:
        return result
    remaining = list(claimed)
    connected = False
    try:
        with _connect() as connection, _batch_loaded(claimed):
            connected = True
            while remaining:
                message = db.session.get(OutboxMessage, remaining[0])
                _send_one(connection, message, now, result)
                remaining.pop(0)
    except Exception as error:
        db.session.rollback()
        if not _is_smtp_error(error):
            _release(remaining)
            raise
        if not remaining:
            return result  # everything went out; only saying goodbye failed
        failure = classify_smtp_error(error)
        log.warning("SMTP connection failed with %s messages to go: %s", len(remaining), failure.reason)
        # No connection at all: every claimed message waits its backoff. A connection lost mid-batch:
        # the message in flight counts an attempt, the others simply go back for the next tick.
        tried = remaining if not connected else remaining[:1]
        for message_id in tried:
            message = db.session.get(OutboxMessage, message_id, populate_existing=True)
            outcome = _retry_or_fail(message, now, failure.reason, transient=True)
            result.retried += outcome == "retry"
            result.failed += outcome == "failed"
        _release(remaining[len(tried) :])
    return result


@contextlib.contextmanager
def _batch_loaded(message_ids: list[int]):
    """Load a batch's messages with their orders, sessions, creators and enrolments in a few queries, and keep
    them loaded across the one commit per message (which records each outcome at once). A batch lasts about a
    second; without this every message re-read the rows it shares with the others."""
    session = db.session()
    batch = session.scalars(  # held here: the session keeps only weak references to what it loaded
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(message_ids))
        .options(
            selectinload(OutboxMessage.order).selectinload(Order.session).selectinload(LiveSession.creator),
            selectinload(OutboxMessage.order).selectinload(Order.enrollment),
        )
        .execution_options(populate_existing=True)
    ).all()
    with keep_loaded_across_commits():
        yield batch


class _TimedConnection(Connection):
    """Flask-Mail's connection with a socket timeout: a relay that stops answering must not stall every tick."""

    def configure_host(self) -> smtplib.SMTP:
        timeout = _setting("MAIL_TIMEOUT_SECONDS", 30)
        smtp_class = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp_class(self.mail.server, self.mail.port, timeout=timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


def _connect() -> Connection:
    return _TimedConnection(current_app.extensions["mail"])


def send_due_emails() -> int:
    """The scheduler's job: batch after batch until nothing is due or the tick's time budget is spent,
    so that thousands of reminders due at one instant do not wait one tick per batch. Returns how many went out."""
    deadline = time.monotonic() + _setting("OUTBOX_DRAIN_SECONDS", 20)
    batch = _setting("OUTBOX_BATCH_SIZE", 100)
    sent = 0
    while True:
        result = dispatch_due(limit=batch)
        sent += result.sent
        if result.claimed < batch or time.monotonic() > deadline:
            return sent


def _is_smtp_error(error: BaseException) -> bool:
    try:
        classify_smtp_error(error)
    except TypeError:
        return False
    return True


def _send_one(connection, message: OutboxMessage, now: datetime, result: DispatchResult) -> None:
    reason = _still_wanted(message, now)
    if reason:
        _settle(message, OutboxStatus.CANCELLED, last_error=reason)
        result.cancelled += 1
        return
    later = _thank_you_not_yet(message, now)
    if later:
        _settle(message, OutboxStatus.PENDING, due_at=later, claimed_at=None)
        return
    _attendance_kind(message)
    try:
        email = compose(message, now)
    except Exception as error:  # a template or data problem: fail this one visibly, go on with the rest
        log.exception("could not compose outbox message %s", message.id)
        db.session.rollback()
        message = db.session.get(OutboxMessage, message.id, populate_existing=True)
        _settle(message, OutboxStatus.FAILED, attempts=message.attempts + 1, last_error=f"could not compose: {error}")
        result.failed += 1
        return
    try:
        connection.send(to_flask_message(email))
    except Exception as error:
        if not _is_smtp_error(error):  # e.g. a header Flask-Mail refuses: this message can never go out
            log.exception("outbox message %s cannot be sent", message.id)
            _settle(message, OutboxStatus.FAILED, attempts=message.attempts + 1,
                    last_error=f"cannot be sent: {type(error).__name__}: {error}")  # fmt: skip
            result.failed += 1
            return
        failure = classify_smtp_error(error)
        if failure.connection_lost:
            raise
        outcome = _retry_or_fail(message, now, failure.reason, failure.transient)
        result.retried += outcome == "retry"
        result.failed += outcome == "failed"
        return
    _settle(message, OutboxStatus.SENT, sent_at=now, attempts=message.attempts + 1, last_error=None, kind=message.kind)
    if message.kind == CONFIRMATION and email.has_join_link:
        _cancel_redundant_join_link(message.order_id)
    result.sent += 1


def _cancel_redundant_join_link(order_id: int) -> None:
    db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.order_id == order_id,
            OutboxMessage.kind == JOIN_LINK,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.CANCELLED, last_error="the confirmation carried the link")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def sent_messages(limit: int = 100) -> list[OutboxMessage]:
    """The newest messages the app has sent (or, in demo mode, kept): the dev mailbox."""
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.SENT)
            .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
        )
    )
