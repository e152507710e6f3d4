"""Composing the emails: subject, text and HTML from the templates under `email/<kind>/`, with an .ics invitation.

Personal (the attendee's name, the session's time in its zone and in UTC, the join link, the creator's branding)
and rendered the moment the dispatcher sends; the creator's previews use a made-up attendee.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from flask import render_template, url_for
from flask_babel import force_locale, get_locale, ngettext
from flask_babel import gettext as _
from flask_mail import Message
from sqlalchemy import func, select

from ...config import settings
from ...extensions import db
from ...locales import DEFAULT_LOCALE
from ...models import Creator, EnrollmentStatus, LiveSession, Order, OrderStatus, OutboxMessage, Refund, utcnow
from ...money import format_amount
from .. import NotFound
from ..account_links import CONFIRM_VALID_FOR, RESET_VALID_FOR, confirm_token, reset_token
from ..ics import CalendarLinks, Invitation, build_ics, calendar_links
from ..jobs import worker_context
from ..personal_data import export_json
from ..tickets import join_link, ticket_url
from .kinds import (
    CONFIRM_EMAIL,
    DATA_EXPORT,
    INVITE_KINDS,
    NOTICES,
    PARTIAL_REFUND,
    PASSWORD_RESET,
    REFUND,
    REMINDER,
    TEMPLATES,
    ends_at,
    partial_refund_id,
    reminder_kind,
    reminder_minutes,
    template_of,
)

ASCII_BLANKS = re.compile(r"[ \t\r\n\f\v]+")


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
    # (file name, content type, content): not kept in the sent copy (the data export is rebuilt on request)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    secret: str | None = None  # a link that must not be kept in the copy of what was sent (a password reset)


def _language() -> str:
    return str(get_locale() or DEFAULT_LOCALE)


def _when(moment: datetime, zone: str) -> str:
    """The instant in the zone, in words; an instant the zone cannot show (the calendar's edge) is given in UTC."""
    try:
        return format_datetime(moment, "EEEE d MMMM y, HH:mm zzzz", tzinfo=ZoneInfo(zone), locale=_language())
    except (OverflowError, ValueError, LookupError):
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _context(
    kind: str, order: Order, session: LiveSession, creator: Creator, join_url: str | None, ticket: str, now: datetime
) -> dict[str, Any]:
    minutes = reminder_minutes(kind)
    # The self-cancellation deadline, as refunds.cancellation_deadline computes it (which sits above the outbox).
    hours = session.cancellation_hours
    deadline = None if hours is None else session.starts_at - timedelta(hours=hours)
    reply_to = creator.reply_to or creator.email
    starts_local = _when(session.starts_at, session.timezone)
    starts_attendee = _when(session.starts_at, order.timezone) if order.timezone else ""
    return {
        "kind": kind,
        "language": _language(),
        "order": order,
        "session": session,
        "creator": creator,
        "attendee_name": order.name,
        "creator_name": creator.name,
        "reply_to": reply_to,
        "brand_colour": creator.brand_colour or "#3b5bdb",
        "logo_url": creator.logo_url,
        "starts_local": starts_local,
        # The attendee's own time, when their zone tells another time (or another zone name) than the session's.
        "starts_attendee": starts_attendee if starts_attendee != starts_local else "",
        "starts_utc": _when(session.starts_at, "UTC"),
        "ends_local": _when(ends_at(session), session.timezone),
        "duration_minutes": session.duration_minutes,
        "amount": format_amount(order.amount, order.currency, locale=_language()) if order.amount else "",
        "join_url": join_url,
        "ticket_url": ticket,
        "replay_url": session.replay_url,
        "feedback_url": f"mailto:{reply_to}?subject=" + quote(_("Feedback: %(title)s", title=session.title)),
        "lead_time": _lead_time(minutes) if minutes is not None else "",
        "refund_reason": _refund_reason(order) if template_of(kind) == REFUND else "",
        "free": not order.amount,
        # Until when the attendee may cancel from their ticket (in their own zone when known); "" when they cannot.
        "cancel_until": _when(deadline, order.timezone or session.timezone) if deadline and now < deadline else "",
        "refund_amount": _partial_refund_amount(kind, order) if template_of(kind) == PARTIAL_REFUND else "",
    }


def _partial_refund_amount(kind: str, order: Order) -> str:
    refund_id = partial_refund_id(kind)
    refund = db.session.get(Refund, refund_id) if refund_id and order.id else None
    amount = refund.amount if refund else order.amount // 2  # a preview shows half the price
    return format_amount(amount, order.currency, locale=_language())


def _refund_reason(order: Order) -> str:
    if not order.id:
        return ""
    reason = db.session.scalar(select(Refund.reason).where(Refund.order_id == order.id).order_by(Refund.id.desc()))
    if reason == "no_seat_left":
        return _("Your payment reached us after your seat's hold had run out, and the session was full by then.")
    if reason == "discount_used_up":
        return _(
            "Your payment reached us after your seat's hold had run out, and your discount code had been used up by "
            "then."
        )
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
    host = settings().BASE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    return Invitation(
        uid=f"order-{order.id}@{host}",
        sequence=sequence,
        starts_at=session.starts_at,
        ends_at=ends_at(session),
        summary=session.title,
        description=_("Your place: %(url)s", url=url),
        url=url,
        organizer_name=creator.name,
        organizer_email=creator.reply_to or creator.email,
        attendee_name=order.name,
        attendee_email=order.email,
        cancelled=cancelled,
    )


def _subject(folder: str, context: dict[str, Any]) -> str:
    """The subject on one line; the no-break spaces of French typography stay (str.split would take them for blanks)."""
    return ASCII_BLANKS.sub(" ", render_template(f"{folder}/subject.txt", **context)).strip()


def render_email(
    kind: str, order: Order, session: LiveSession, *, join_url: str | None, ticket: str, sequence: int, now: datetime
) -> Email:
    """Subject, both bodies and the .ics of one message, from the templates under email/<kind>/."""
    creator = db.session.get(Creator, session.creator_id)
    context = _context(kind, order, session, creator, join_url, ticket, now)
    folder = f"email/{template_of(kind)}"
    email = Email(
        to=order.email,
        subject=_subject(folder, context),
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
    if kind == DATA_EXPORT and order.id:
        export = export_json(order, now).encode()
        email.attachments.append((f"my-data-order-{order.id}.json", "application/json", export))
    return email


def ticket_invitation(order: Order, now: datetime | None = None) -> str:
    """The order's calendar entry as its emails carry it (same UID, latest SEQUENCE, the join link, never the
    ticket), for the ticket page's download: importing it updates the entry an email already added."""
    session = db.session.get(LiveSession, order.session_id)
    creator = db.session.get(Creator, session.creator_id)
    sequence = db.session.scalar(select(func.max(OutboxMessage.ics_sequence)).where(OutboxMessage.order_id == order.id))
    url = join_link(order)
    return build_ics(_invitation(order, session, creator, url, sequence or 0, cancelled=False), now or utcnow())


def ticket_calendar_links(order: Order) -> CalendarLinks:
    session = db.session.get(LiveSession, order.session_id)
    url = join_link(order)
    details = _("Your place: %(url)s", url=url)
    return calendar_links(session.title, session.starts_at, ends_at(session), details, url)


def compose_account(message: OutboxMessage, now: datetime) -> Email:
    """A creator's own message: a password reset, an address to confirm, or a sign-up with a known address; in the
    creator's language, as their other emails."""
    creator = db.session.get(Creator, message.creator_id)
    context: dict[str, Any] = {"creator_name": creator.name, "address": message.to_address, "link": None}
    with worker_context(), force_locale(creator.locale or DEFAULT_LOCALE):
        context["language"] = _language()
        if message.kind == PASSWORD_RESET:
            context["link"] = url_for("auth.reset", token=reset_token(creator, message.created_at), _external=True)
            context["valid_minutes"] = int(RESET_VALID_FOR.total_seconds() // 60)
        elif message.kind == CONFIRM_EMAIL:
            token = confirm_token(creator, message.to_address, message.created_at)
            context["link"] = url_for("auth.confirm_email", token=token, _external=True)
            context["valid_days"] = CONFIRM_VALID_FOR.days
        else:
            context["login_url"] = url_for("auth.login", _external=True)
            context["forgot_url"] = url_for("auth.forgot", _external=True)
        folder = f"email/{message.kind}"
        email = Email(
            to=message.to_address,
            subject=_subject(folder, context),
            text=render_template(f"{folder}/body.txt", **context),
            html=render_template(f"{folder}/body.html", **context),
            secret=context["link"] if message.kind == PASSWORD_RESET else None,
        )
    email.headers["X-Webinar-Pay-Message"] = f"account:{message.kind}"
    email.headers["Auto-Submitted"] = "auto-generated"
    return email


def compose(message: OutboxMessage, now: datetime | None = None) -> Email:
    """The email an outbox row stands for, as it would be sent now."""
    now = now or utcnow()
    if message.order_id is None:
        return compose_account(message, now)
    order = db.session.get(Order, message.order_id)
    session = db.session.get(LiveSession, order.session_id)
    enrollment = order.enrollment
    enrolled = enrollment is not None and enrollment.status == EnrollmentStatus.ENROLLED and enrollment.join_url
    # Links in emails need a request context, which the dispatcher has not; the words are in the buyer's language.
    with worker_context(), force_locale(order.locale or DEFAULT_LOCALE):
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
    base = settings().BASE_URL
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
    for filename, content_type, content in email.attachments:
        message.attach(filename, content_type, content, "attachment")
    return message
