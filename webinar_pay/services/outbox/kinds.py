"""The outbox's vocabulary: the kinds of message, their templates, and the times messages key off.

Reminders are a number of minutes before the session's UTC start, so they fall at the same instant
whatever the clocks do in between (a DST change moves the wall-clock time, not the gap).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ...models import LiveSession

CONFIRMATION = "confirmation"
JOIN_LINK = "join_link"
REMINDER = "reminder"
THANK_YOU = "thank_you"
MISSED_YOU = "missed_you"
SESSION_MOVED = "session_moved"
CANCELLED = "cancelled"
REFUND = "refund"
DATA_EXPORT = "data_export"  # the attendee asked for their data: the export rides along as a JSON attachment
NOTICES = {CANCELLED, REFUND, DATA_EXPORT}  # still sent once the order is no longer paid
TEMPLATES = (CONFIRMATION, JOIN_LINK, REMINDER, THANK_YOU, MISSED_YOU, SESSION_MOVED, CANCELLED, REFUND)
INVITE_KINDS = {CONFIRMATION, JOIN_LINK, SESSION_MOVED, CANCELLED, REFUND}
# A creator's own messages, with their creator and address instead of an order.
PASSWORD_RESET = "password_reset"  # noqa: S105 (a kind of email)
CONFIRM_EMAIL = "confirm_email"
ACCOUNT_EXISTS = "account_exists"  # someone signed up with an address that has an account: the owner is told
ACCOUNT_KINDS = (PASSWORD_RESET, CONFIRM_EMAIL, ACCOUNT_EXISTS)


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


def later(moment: datetime, delta: timedelta) -> datetime:
    """`moment + delta`, stopping at the calendar's last instant rather than failing."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def ends_at(session: LiveSession) -> datetime:
    """The session's planned end, as `later` computes it."""
    return later(session.starts_at, timedelta(minutes=session.duration_minutes))
