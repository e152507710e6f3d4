"""Live sessions: one validation for the HTML form and the API, then create, update and publish."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import Creator, LiveSession, Platform, SessionStatus, get_by_id, utcnow
from ..money import MoneyError, normalize_currency
from . import Conflict, NotFound, ValidationError
from .enrollment import prepare_session_platform
from .outbox import move_messages
from .timezones import NonexistentLocalTime, is_valid_timezone, local_to_utc

DEFAULT_REMINDER_OFFSETS = [1440, 60]
MAX_CAPACITY = 100_000
MAX_DURATION_MINUTES = 24 * 60
MAX_REMINDER_OFFSET = 60 * 24 * 60
MAX_PRICE = 100_000_000
MAX_CANCELLATION_HOURS = 365 * 24
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
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, str):
        value = value.strip()
    number = int(value)
    if isinstance(value, float) and value != number:
        raise ValueError
    if not low <= number <= high:
        raise ValueError
    return number


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    value = value.strip()
    parts = urlparse(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError
    return value


def _starts_at(value: Any, zone: str | None) -> datetime:
    """ISO 8601 with an offset (API), or a local wall time read in the session's time zone (form)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        return parsed
    if not zone:
        raise ValueError
    return local_to_utc(parsed, zone)


def _reminder_offsets(value: Any) -> list[int]:
    if isinstance(value, str):
        value = [part for part in value.replace(";", ",").split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError
    offsets = {_int_field(item, 1, MAX_REMINDER_OFFSET) for item in value}
    return sorted(offsets, reverse=True)


def parse_session_fields(raw: Mapping[str, Any], current: LiveSession | None = None) -> dict[str, Any]:
    """Validate what a creator sent. With `current`, missing fields keep their value (PATCH)."""
    errors: dict[str, str] = {field: _("Unknown field.") for field in set(raw) - set(FIELDS) - READ_ONLY_FIELDS}
    out: dict[str, Any] = {}

    def given(field: str) -> bool:
        return field in raw and raw[field] is not None and raw[field] != ""

    def required(field: str) -> bool:
        if given(field):
            return True
        if current is None or field in raw:
            errors[field] = _("This field is required.")
        return False

    def text(field: str) -> str:
        if not isinstance(raw[field], str):
            errors[field] = _("Enter text.")
            return ""
        return raw[field].strip()

    if required("title"):
        out["title"] = text("title")
        if not out["title"] or len(out["title"]) > 200:
            errors.setdefault("title", _("Use between 1 and 200 characters."))
    if given("description"):
        out["description"] = text("description")[:20_000]
    elif "description" in raw:
        out["description"] = ""

    zone = current.timezone if current else None
    if required("timezone"):
        if is_valid_timezone(text("timezone")):
            zone = out["timezone"] = raw["timezone"]
        else:
            errors["timezone"] = _("Choose an IANA time zone such as Europe/Paris.")
    if required("starts_at") and "timezone" not in errors:
        try:
            out["starts_at"] = _starts_at(raw["starts_at"], zone)
        except NonexistentLocalTime:
            errors["starts_at"] = _("This time does not exist in %(zone)s: the clocks change then.", zone=zone)
        except (ValueError, TypeError):
            errors["starts_at"] = _("Enter a date and time such as 2026-05-04T18:30:00+02:00.")

    for field, low, high in (("duration_minutes", 1, MAX_DURATION_MINUTES), ("capacity", 1, MAX_CAPACITY)):
        if required(field):
            try:
                out[field] = _int_field(raw[field], low, high)
            except (ValueError, TypeError, OverflowError):
                errors[field] = _("Enter a whole number from %(low)d to %(high)d.", low=low, high=high)
    if required("price"):
        try:
            out["price"] = _int_field(raw["price"], 0, MAX_PRICE)
        except (ValueError, TypeError, OverflowError):
            errors["price"] = _("Enter the price in minor units (cents), zero for a free session.")
    if required("currency"):
        try:
            out["currency"] = normalize_currency(text("currency"))
        except MoneyError:
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
            out["replay_url"] = _url(raw["replay_url"])
        except ValueError:
            errors["replay_url"] = _("Enter a full https:// address.")
    elif "replay_url" in raw:
        out["replay_url"] = None

    if given("cancellation_hours"):
        try:
            out["cancellation_hours"] = _int_field(raw["cancellation_hours"], 0, MAX_CANCELLATION_HOURS)
        except (ValueError, TypeError, OverflowError):
            errors["cancellation_hours"] = _("Enter 0 to %(n)d hours, or leave it empty.", n=MAX_CANCELLATION_HOURS)
    elif "cancellation_hours" in raw:
        out["cancellation_hours"] = None

    if "reminder_offsets_minutes" in raw:
        try:
            out["reminder_offsets"] = _reminder_offsets(raw["reminder_offsets_minutes"] or [])
        except (ValueError, TypeError, OverflowError):
            errors["reminder_offsets_minutes"] = _("Enter minutes before the start, such as 1440, 60.")
    elif current is None:
        out["reminder_offsets"] = list(DEFAULT_REMINDER_OFFSETS)

    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    return out


def _platform_fields(
    raw: Mapping[str, Any], platform: str | None, current: LiveSession | None, errors: dict[str, str]
) -> dict[str, Any]:
    """The reference the chosen platform needs; the other platforms' references are cleared."""
    out: dict[str, Any] = {"zoom_meeting_id": None, "zoom_kind": None, "youtube_url": None, "join_link": None}
    if platform == Platform.ZOOM:
        meeting_id = str(raw.get("zoom_meeting_id") or getattr(current, "zoom_meeting_id", None) or "")
        meeting_id = meeting_id.replace(" ", "").strip()
        # No id: the app schedules the meeting itself when the session is published.
        if meeting_id and not (meeting_id.isascii() and meeting_id.isdigit() and 9 <= len(meeting_id) <= 12):
            errors["zoom_meeting_id"] = _("Enter the Zoom meeting or webinar ID (9 to 12 digits).")
        kind = raw.get("zoom_kind") or getattr(current, "zoom_kind", None) or "meeting"
        if not isinstance(kind, str) or kind not in {"meeting", "webinar"}:
            errors["zoom_kind"] = _("Choose meeting or webinar.")
        out.update(zoom_meeting_id=meeting_id or None, zoom_kind=kind)
    for field, needed_for in (("youtube_url", Platform.YOUTUBE), ("join_link", Platform.LINK)):
        if platform == needed_for:
            try:
                out[field] = _url(raw.get(field) or getattr(current, field, None))
            except ValueError:
                errors[field] = _("Enter a full https:// address.")
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
    session.status = SessionStatus.PUBLISHED
    session.published_at = utcnow()
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
