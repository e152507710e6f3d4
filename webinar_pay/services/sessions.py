"""Live sessions: one validation for the HTML form and the API (`schemas.SessionInput`), then create, update and
publish."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..limits import EARLIEST_START, LATEST_START
from ..models import Creator, LiveSession, Platform, SessionStatus, get_by_id, utcnow
from . import Conflict, NotFound, ValidationError
from .accounts import require_verified_email
from .enrollment import prepare_session_platform
from .outbox.planning import move_messages
from .schemas import (
    DEFAULT_REMINDER_OFFSETS,
    PLATFORM_REFERENCES,
    READ_ONLY_FIELDS,
    SessionInput,
    SessionPatch,
    enter_a_start,
    read,
)
from .state import transition
from .text import status_label
from .timezones import NonexistentLocalTime, local_to_utc

# The fields stored as they are read; null clears the optional ones among them (description, replay_url,
# cancellation_hours), while the others refuse it.
_AS_READ = (
    "title",
    "description",
    "timezone",
    "duration_minutes",
    "price",
    "currency",
    "capacity",
    "platform",
    "replay_url",
    "cancellation_hours",
)
_PLATFORM_FIELDS = ("zoom_meeting_id", "zoom_kind", "youtube_url", "join_link")


def parse_session_fields(
    raw: Mapping[str, Any], current: LiveSession | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Validate what a creator sent (JSON values) into a session's columns. With `current`, missing fields keep their
    value (PATCH).

    Null is the same as leaving a field out, except for the fields it clears (description, replay_url,
    cancellation_hours, reminder_offsets_minutes). Each field follows its rule in `schemas`; here are the rules that
    need the stored session or the clock: a start's time zone and window, and the platform's link.
    """
    model = SessionInput if current is None else SessionPatch
    fields, errors = read(model, {name: value for name, value in raw.items() if name not in READ_ONLY_FIELDS})
    sent = fields.model_fields_set
    out: dict[str, Any] = {name: getattr(fields, name) for name in _AS_READ if name in sent}
    if "description" in out and out["description"] is None:
        out["description"] = ""
    if "starts_at" in sent and "timezone" not in errors:
        zone = fields.timezone if "timezone" in sent else getattr(current, "timezone", None)
        out["starts_at"] = _start(fields.starts_at, zone, current, now or utcnow(), errors)
    if "platform" not in errors:
        out.update(_platform_fields(fields, current, errors))
    if "reminder_offsets_minutes" in sent:
        out["reminder_offsets"] = fields.reminder_offsets_minutes or []
    elif current is None:
        out["reminder_offsets"] = list(DEFAULT_REMINDER_OFFSETS)
    if errors:
        raise ValidationError(_("Please correct the marked fields."), fields=errors)
    return out


def _start(
    starts_at: datetime, zone: str | None, current: LiveSession | None, now: datetime, errors: dict[str, str]
) -> datetime | None:
    """The start as a UTC instant (a wall-clock time is read in `zone`); a new one lies within the window."""
    if starts_at.tzinfo is None:
        try:
            if not zone:
                raise ValueError("a wall-clock time needs a time zone")
            starts_at = local_to_utc(starts_at, zone)
        except NonexistentLocalTime:
            errors["starts_at"] = _("This time does not exist in %(zone)s: the clocks change then.", zone=zone)
            return None
        except (ValueError, OverflowError):
            errors["starts_at"] = enter_a_start()
            return None
    moved = current is None or starts_at != current.starts_at
    if moved and not now - EARLIEST_START <= starts_at <= now + LATEST_START:
        errors["starts_at"] = _("Choose a start between yesterday and five years from now.")
    return starts_at


def _platform_fields(fields: SessionPatch, current: LiveSession | None, errors: dict[str, str]) -> dict[str, Any]:
    """The reference the chosen platform needs; the other platforms' references are cleared.

    Every reference sent is checked (by its rule), whichever platform it belongs to, so that a mistake is never
    silently dropped.
    """
    platform = fields.platform if "platform" in fields.model_fields_set else getattr(current, "platform", None)
    sent = {name: getattr(fields, name) for name in _PLATFORM_FIELDS}
    out: dict[str, Any] = dict.fromkeys(_PLATFORM_FIELDS)
    if platform == Platform.ZOOM:
        # No ID: the app schedules the meeting itself when the session is published.
        meeting_id = sent["zoom_meeting_id"] or getattr(current, "zoom_meeting_id", None)
        kind = sent["zoom_kind"] or getattr(current, "zoom_kind", None) or "meeting"
        out.update(zoom_meeting_id=meeting_id, zoom_kind=kind)
    field = PLATFORM_REFERENCES.get(platform)
    if field:
        out[field] = sent[field] or getattr(current, field, None)
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
        raise Conflict(_("A %(status)s session cannot be changed.", status=status_label(session.status)))
    fields = parse_session_fields(raw, current=session)
    if fields.get("capacity", session.capacity) < session.seats_taken:
        raise ValidationError(
            _("Please correct the marked fields."),
            fields={"capacity": _("%(n)d seats are already taken.", n=session.seats_taken)},
        )
    before = (session.starts_at, session.duration_minutes, list(session.reminder_offsets or []))
    zoom_before = (session.platform, session.zoom_meeting_id, session.zoom_kind)
    if session.status == SessionStatus.PUBLISHED and fields.get("price", 0) > 0 and session.price == 0:
        require_verified_email(session.creator)  # a free session on sale cannot turn paid before the address answers
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
    if session.price > 0:
        require_verified_email(session.creator)
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
