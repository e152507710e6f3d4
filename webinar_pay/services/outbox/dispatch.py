"""Sending the emails: one dispatcher claims due outbox rows, composes them and sends them over one SMTP connection.

The dispatcher claims due rows atomically (`jobs.claim_due`: SKIP LOCKED on PostgreSQL, one conditional UPDATE on
SQLite), sends a batch over one SMTP connection and marks each row sent, with a copy of what went out, as soon as
the server took it. Claims left behind by a worker that died are taken back after `OUTBOX_CLAIM_TIMEOUT_SECONDS`,
so nothing is lost; a crash between the server's "250 OK" and our commit can still send that one message twice,
which is the price of never losing one.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_mail import Connection
from markupsafe import escape
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from integrations.mail import classify_smtp_error

from ...config import settings
from ...extensions import db, keep_loaded_across_commits
from ...models import LiveSession, Order, OrderStatus, OutboxMessage, OutboxStatus, SessionStatus, get_by_id, utcnow
from .. import NotFound
from ..jobs import backoff, claim_due
from ..state import ConcurrentUpdate, transition
from .compose import Email, compose, to_flask_message
from .kinds import (
    CONFIRMATION,
    JOIN_LINK,
    MISSED_YOU,
    NOTICES,
    REMINDER,
    THANK_YOU,
    ends_at,
    later,
    template_of,
)

log = logging.getLogger(__name__)

# Once Zoom says a session started, the thank-you waits for its real end, but never longer than this.
OVERRUN_LIMIT = timedelta(hours=6)


def recover_stale_claims(now: datetime | None = None) -> int:
    """Claims older than the timeout belong to a worker that died: give them back."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings().OUTBOX_CLAIM_TIMEOUT_SECONDS)
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
    if message.order_id is None:
        return None  # a creator's own message: a link asked for a moment ago
    order = db.session.get(Order, message.order_id)
    session = db.session.get(LiveSession, order.session_id)
    if order.erased_at is not None:
        return "personal data erased"
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
    if started is not None and ended is None and now < later(ends_at(session), OVERRUN_LIMIT):
        return now + timedelta(minutes=settings().THANK_YOU_GRACE_MINUTES)
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
    base = settings().MAIL_RETRY_BASE_SECONDS
    cap = settings().MAIL_RETRY_MAX_SECONDS
    if transient and attempts < settings().MAIL_MAX_ATTEMPTS:
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
    claimed = _claim(now, limit or settings().OUTBOX_BATCH_SIZE)
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
        timeout = settings().MAIL_TIMEOUT_SECONDS
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
    deadline = time.monotonic() + settings().OUTBOX_DRAIN_SECONDS
    batch = settings().OUTBOX_BATCH_SIZE
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
    _settle(
        message, OutboxStatus.SENT, sent_at=now, attempts=message.attempts + 1, last_error=None, kind=message.kind,
        **_copy_of(email),
    )  # fmt: skip
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


NOT_KEPT = "[link not kept]"


def _copy_of(email: Email) -> dict[str, str | None]:
    """What is kept of a message that went out, recorded with its outcome (in the same UPDATE). A password reset's
    link is left out: whoever reads the database must not be able to use it."""
    text, html = email.text, email.html
    if email.secret:
        text = text.replace(email.secret, NOT_KEPT)
        html = html.replace(email.secret, NOT_KEPT).replace(escape(email.secret), NOT_KEPT)
    return {
        "sent_to": email.to, "sent_reply_to": email.reply_to, "sent_subject": email.subject,
        "sent_text": text, "sent_html": html, "sent_ics": email.ics,
    }  # fmt: skip


# -- what was sent ------------------------------------------------------------------------------------------------


def sent_copy(message: OutboxMessage) -> Email | None:
    """The email as it went out the last time, from the copy kept when it was sent; None for a message sent before
    copies were kept (it is not rendered anew: today's templates and data could say something else)."""
    if message.sent_subject is None:
        return None
    return Email(
        to=message.sent_to or "", subject=message.sent_subject, text=message.sent_text or "",
        html=message.sent_html or "", reply_to=message.sent_reply_to, ics=message.sent_ics,
    )  # fmt: skip


def sent_messages(limit: int = 100) -> list[OutboxMessage]:
    """The newest messages the app has sent (or, in demo mode, kept), with their orders and sessions: the dev
    mailbox. Their bodies are read only when one is shown."""
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.SENT)
            .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
            .options(selectinload(OutboxMessage.order).selectinload(Order.session))
        )
    )


def sent_message(session: LiveSession, message_id: int) -> tuple[OutboxMessage, Email | None]:
    """A sent message of the session and the copy of what went out (None if sent before copies were kept).

    Raises NotFound for any other message: another session's, or one not sent.
    """
    message = get_by_id(OutboxMessage, message_id)
    if (
        message is None
        or message.status != OutboxStatus.SENT
        or message.order is None
        or message.order.session_id != session.id
    ):
        raise NotFound(_("No such message."))
    return message, sent_copy(message)
