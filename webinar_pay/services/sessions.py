"""Live sessions: one validation for the HTML form and the API, then create, update and publish."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import Creator, LiveSession, Platform, SessionStatus, get_by_id, utcnow
from ..money import CURRENCIES
from . import Conflict, NotFound, ValidationError
from .enrollment import prepare_session_platform
from .outbox.planning import move_messages
from .state import transition
from .text import TextError, clean_text, clean_url
from .timezones import NonexistentLocalTime, is_valid_timezone, local_to_utc

DEFAULT_REMINDER_OFFSETS = [1440, 60]
MAX_CAPACITY = 100_000
MAX_DURATION_MINUTES = 24 * 60
# Each reminder is an email to every attendee: a few, none closer than 5 minutes, none further than 30 days.
MAX_REMINDERS = 10
MIN_REMINDER_OFFSET = 5
MAX_REMINDER_OFFSET = 30 * 24 * 60
MAX_PRICE = 100_000_000
MAX_CANCELLATION_HOURS = 365 * 24
MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 20_000
# A new start (a session created or moved) lies between a day ago (a creator fixing yesterday's session) and five
# years ahead. Further out is a typo or an attack: a start near year 9999 cannot even be shown in most time zones.
EARLIEST_START = timedelta(days=1)
LATEST_START = timedelta(days=5 * 365 + 1)
# ISO 8601 as the API takes it; the OpenAPI document publishes these patterns as they are.
STARTS_AT_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?$"
)
ZOOM_MEETING_ID_PATTERN = r"^(?:(?: *[0-9]){9,12})? *$"
MIN_ZOOM_MEETING_ID, MAX_ZOOM_MEETING_ID = 10**8, 10**12 - 1  # 9 to 12 digits, sent as a number
ZOOM_KINDS = ("meeting", "webinar")
# The API takes a currency code in upper or lower case; a form may also type it in mixed case (see the dashboard).
CURRENCY_CODES = (*CURRENCIES, *(code.lower() for code in CURRENCIES))
_STARTS_AT = re.compile(STARTS_AT_PATTERN)
_CURRENCY_CODES = frozenset(CURRENCY_CODES)
# What the API returns about a session but nobody sets; sent back in a PATCH, they are ignored.
READ_ONLY_FIELDS = frozenset({"id", "status", "seats_taken", "seats_left", "public_url"})
FIELDS = (
    "title",
    "description",
    "starts_at",
    "timezone",
    "duration_minutes",
    "price",
    "currency",
    "capacity",
    "platform",
    "zoom_meeting_id",
    "zoom_kind",
    "youtube_url",
    "join_link",
    "replay_url",
    "reminder_offsets_minutes",
    "cancellation_hours",
)


def _int_field(value: Any, low: int, high: int) -> int:
    """A JSON number that is whole (2 or 2.0) within [low, high]; text is the form's business (see the dashboard)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError
    if isinstance(value, float) and not value.is_integer():
        raise ValueError
    number = int(value)
    if not low <= number <= high:
        raise ValueError
    return number


def _starts_at(value: Any, zone: str | None) -> datetime:
    """ISO 8601 with an offset (that instant), or a wall-clock time read in the session's time zone (a form)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _STARTS_AT.fullmatch(value):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise ValueError
    if parsed.tzinfo is None:
        if not zone:
            raise ValueError
        return local_to_utc(parsed, zone)
    return parsed.astimezone(UTC)


def _reminder_offsets(value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_REMINDERS:
        raise ValueError
    offsets = {_int_field(item, MIN_REMINDER_OFFSET, MAX_REMINDER_OFFSET) for item in value}
    return sorted(offsets, reverse=True)


def _zoom_meeting_id(value: Any) -> str | None:
    """9 to 12 digits, as text (spaces ignored) or a number; blank text is no ID."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError
    digits = value.replace(" ", "")
    if not digits:
        return None
    if not (digits.isascii() and digits.isdigit() and 9 <= len(digits) <= 12):
        raise ValueError
    return digits


def parse_session_fields(
    raw: Mapping[str, Any], current: LiveSession | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Validate what a creator sent (JSON values). With `current`, missing fields keep their value (PATCH).

    Null is the same as leaving a field out, except for the fields it clears (description, replay_url,
    cancellation_hours, reminder_offsets_minutes).
    """
    errors: dict[str, str] = {field: _("Unknown field.") for field in set(raw) - set(FIELDS) - READ_ONLY_FIELDS}
    out: dict[str, Any] = {}
    now = now or utcnow()

    def given(field: str) -> bool:
        return raw.get(field) is not None

    def required(field: str) -> bool:
        if given(field):
            return True
        if current is None or field in raw:
            errors[field] = _("This field is required.")
        return False

    def text(field: str, max_length: int, multiline: bool = False) -> str:
        try:
            return clean_text(raw[field], max_length=max_length, multiline=multiline, required=False)
        except TextError as error:
            errors[field] = error.message
            return ""

    if required("title"):
        out["title"] = text("title", MAX_TITLE_LENGTH)
        if not out["title"]:
            errors.setdefault("title", _("Use between 1 and %(n)d characters.", n=MAX_TITLE_LENGTH))
    if given("description"):
        out["description"] = text("description", MAX_DESCRIPTION_LENGTH, multiline=True)
    elif "description" in raw:
        out["description"] = ""

    zone = current.timezone if current else None
    if required("timezone"):
        if isinstance(raw["timezone"], str) and is_valid_timezone(raw["timezone"]):
            zone = out["timezone"] = raw["timezone"]
        else:
            errors["timezone"] = _("Choose an IANA time zone such as Europe/Paris.")
    if required("starts_at") and "timezone" not in errors:
        try:
            starts_at = _starts_at(raw["starts_at"], zone)
        except NonexistentLocalTime:
            errors["starts_at"] = _("This time does not exist in %(zone)s: the clocks change then.", zone=zone)
        except (ValueError, TypeError, OverflowError):
            errors["starts_at"] = _("Enter a date and time such as 2026-05-04T18:30:00+02:00.")
        else:
            moved = current is None or starts_at != current.starts_at
            if moved and not now - EARLIEST_START <= starts_at <= now + LATEST_START:
                errors["starts_at"] = _("Choose a start between yesterday and five years from now.")
            out["starts_at"] = starts_at

    for field, low, high in (("duration_minutes", 1, MAX_DURATION_MINUTES), ("capacity", 1, MAX_CAPACITY)):
        if required(field):
            try:
                out[field] = _int_field(raw[field], low, high)
            except ValueError:
                errors[field] = _("Enter a whole number from %(low)d to %(high)d.", low=low, high=high)
    if required("price"):
        try:
            out["price"] = _int_field(raw["price"], 0, MAX_PRICE)
        except ValueError:
            errors["price"] = _("Enter the price in minor units (cents), zero for a free session.")
    if required("currency"):
        if isinstance(raw["currency"], str) and raw["currency"] in _CURRENCY_CODES:
            out["currency"] = raw["currency"].upper()
        else:
            errors["currency"] = _("Enter an ISO 4217 currency code such as EUR.")

    platform = current.platform if current else None
    if required("platform"):
        platform = raw["platform"]
        if not isinstance(platform, str) or platform not in set(Platform):
            errors["platform"] = _("Choose zoom, youtube or link.")
        out["platform"] = platform
    out.update(_platform_fields(raw, platform, current, errors))
    if given("replay_url"):
        try:
            out["replay_url"] = clean_url(raw["replay_url"])
        except TextError as error:
            errors["replay_url"] = error.message
    elif "replay_url" in raw:
        out["replay_url"] = None

    if given("cancellation_hours"):
        try:
            out["cancellation_hours"] = _int_field(raw["cancellation_hours"], 0, MAX_CANCELLATION_HOURS)
        except ValueError:
            errors["cancellation_hours"] = _("Enter 0 to %(n)d hours, or leave it empty.", n=MAX_CANCELLATION_HOURS)
    elif "cancellation_hours" in raw:
        out["cancellation_hours"] = None

    if given("reminder_offsets_minutes"):
        try:
            out["reminder_offsets"] = _reminder_offsets(raw["reminder_offsets_minutes"])
        except ValueError:
            errors["reminder_offsets_minutes"] = _(
                "Enter at most %(n)d reminders, each %(low)d to %(high)d minutes before the start, such as 1440, 60.",
                n=MAX_REMINDERS, low=MIN_REMINDER_OFFSET, high=MAX_REMINDER_OFFSET,
            )  # fmt: skip
    elif "reminder_offsets_minutes" in raw:
        out["reminder_offsets"] = []
    elif current is None:
        out["reminder_offsets"] = list(DEFAULT_REMINDER_OFFSETS)

    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    return out


def _platform_fields(
    raw: Mapping[str, Any], platform: str | None, current: LiveSession | None, errors: dict[str, str]
) -> dict[str, Any]:
    """The reference the chosen platform needs; the other platforms' references are cleared.

    Every reference sent is checked, whichever platform it belongs to, so that a mistake is never silently dropped.
    """
    out: dict[str, Any] = {"zoom_meeting_id": None, "zoom_kind": None, "youtube_url": None, "join_link": None}
    sent: dict[str, Any] = {}
    if raw.get("zoom_meeting_id") is not None:
        try:
            sent["zoom_meeting_id"] = _zoom_meeting_id(raw["zoom_meeting_id"])
        except ValueError:
            errors["zoom_meeting_id"] = _("Enter the Zoom meeting or webinar ID (9 to 12 digits).")
    if raw.get("zoom_kind") is not None:
        sent["zoom_kind"] = raw["zoom_kind"]
        if not isinstance(raw["zoom_kind"], str) or raw["zoom_kind"] not in ZOOM_KINDS:
            errors["zoom_kind"] = _("Choose meeting or webinar.")
    for field in ("youtube_url", "join_link"):
        if raw.get(field) is not None:
            try:
                sent[field] = clean_url(raw[field])
            except TextError as error:
                errors[field] = error.message

    if platform == Platform.ZOOM:
        # No ID: the app schedules the meeting itself when the session is published.
        meeting_id = sent.get("zoom_meeting_id") or getattr(current, "zoom_meeting_id", None)
        kind = sent.get("zoom_kind") or getattr(current, "zoom_kind", None) or "meeting"
        out.update(zoom_meeting_id=meeting_id, zoom_kind=kind)
    for field, needed_for in (("youtube_url", Platform.YOUTUBE), ("join_link", Platform.LINK)):
        if platform == needed_for:
            out[field] = sent.get(field) or getattr(current, field, None)
            if not out[field]:
                errors.setdefault(field, _("Enter a full https:// address."))
    return out


def create_session(creator: Creator, raw: Mapping[str, Any]) -> LiveSession:
    session = LiveSession(creator_id=creator.id, status=SessionStatus.DRAFT, **parse_session_fields(raw))
    db.session.add(session)
    db.session.commit()
    return session


def update_session(session: LiveSession, raw: Mapping[str, Any]) -> LiveSession:
    if session.status in {SessionStatus.CANCELLED, SessionStatus.ENDED}:
        raise Conflict(_("A %(status)s session cannot be changed.", status=session.status))
    fields = parse_session_fields(raw, current=session)
    if fields.get("capacity", session.capacity) < session.seats_taken:
        raise ValidationError(
            _("Please correct the marked fields."),
            fields={"capacity": _("%(n)d seats are already taken.", n=session.seats_taken)},
        )
    before = (session.starts_at, session.duration_minutes, list(session.reminder_offsets or []))
    zoom_before = (session.platform, session.zoom_meeting_id, session.zoom_kind)
    for name, value in fields.items():
        setattr(session, name, value)
    if session.status == SessionStatus.PUBLISHED and zoom_before != (
        session.platform,
        session.zoom_meeting_id,
        session.zoom_kind,
    ):
        try:
            prepare_session_platform(session)  # the new meeting must let paid attendees, and only them, in
        except Exception:
            db.session.rollback()
            raise
    if (session.starts_at, session.duration_minutes) != before[:2]:
        move_messages(session, notify=True)
    elif list(session.reminder_offsets or []) != before[2]:
        move_messages(session, notify=False)
    db.session.commit()
    return session


def publish_session(session: LiveSession) -> LiveSession:
    if session.status == SessionStatus.PUBLISHED:
        return session
    if session.status != SessionStatus.DRAFT:
        raise Conflict(_("Only a draft can be published."))
    if session.has_started():
        raise Conflict(_("This session starts in the past: move it first."))
    prepare_session_platform(session)  # Zoom: the meeting exists and only paid attendees get in
    transition(session, SessionStatus.PUBLISHED, published_at=utcnow())
    db.session.commit()
    return session


def creator_sessions(creator: Creator) -> list[LiveSession]:
    return list(
        db.session.scalars(
            select(LiveSession).where(LiveSession.creator_id == creator.id).order_by(LiveSession.starts_at.desc())
        )
    )


def creator_session(creator: Creator, session_id: int) -> LiveSession:
    """A creator's own session; someone else's is reported as missing, never as forbidden."""
    session = get_by_id(LiveSession, session_id)
    if session is None or session.creator_id != creator.id:
        raise NotFound(_("No such session."))
    return session


def public_session(session_id: int) -> LiveSession:
    session = get_by_id(LiveSession, session_id)
    if session is None or session.status == SessionStatus.DRAFT:
        raise NotFound(_("No such session."))
    return session


def upcoming_sessions(limit: int = 100) -> list[LiveSession]:
    return list(
        db.session.scalars(
            select(LiveSession)
            .where(LiveSession.status == SessionStatus.PUBLISHED, LiveSession.starts_at > utcnow())
            .order_by(LiveSession.starts_at)
            .limit(limit)
        )
    )
