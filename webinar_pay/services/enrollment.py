"""Enrolment: a paid attendee gets a personal way into the session's platform, without the creator lifting a finger.

`confirm_payment` asks for it (`request_enrollment`); platforms that need no network call (a plain
link, YouTube, the demo stand-in for Zoom) are enrolled in that same transaction. Zoom is enrolled by the
scheduler tick (`enroll_due`), outside the webhook request: each row is claimed with one conditional UPDATE
(status pending and due), so any number of workers may tick and each attendee is registered once. A failure
is retried with capped exponential backoff; after the last attempt (or at once when the cause is a setting
to change) the enrolment is `failed`, the creator is emailed and the dashboard offers "retry".

States (`ENROLLMENT_TRANSITIONS`): pending -> enrolled | failed | cancelled; failed -> pending | cancelled;
enrolled -> cancelled, applied by `state.transition` (under the worker's `attempts` fence while it holds a claim).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_mail import Message
from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from integrations.video import (
    ApprovalType,
    Attendee,
    MeetingInfo,
    MeetingNotFound,
    MeetingRef,
    NewMeeting,
    Registration,
    VideoConfigurationError,
    VideoError,
    VideoEvent,
)
from integrations.video.demo import DemoPlatform
from integrations.video.youtube import embed_url

from ..config import settings
from ..extensions import db, mail
from ..locales import DEFAULT_LOCALE
from ..models import (
    Enrollment,
    EnrollmentStatus,
    LiveSession,
    Order,
    OrderStatus,
    Platform,
    ProviderEvent,
    SessionStatus,
    ZoomMeeting,
    utcnow,
)
from . import NotFound, ValidationError
from .jobs import backoff, claim_due, claim_each, record_event_once, worker_context
from .outbox.planning import plan_join_link_message, session_ended
from .state import ConcurrentUpdate, transition, transition_all
from .tickets import personal_join_url
from .video import VideoPlatformUnavailable, video_platform

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)  # a worker that dies mid-call gives its claim back after this


class ZoomUnwell(Exception):
    """Zoom failed transiently (after the client's own retries): no point trying the next attendee now."""


def _ref(session: LiveSession) -> MeetingRef:
    return MeetingRef(meeting_id=session.zoom_meeting_id or "", kind=session.zoom_kind or "meeting")


# -- session set-up ----------------------------------------------------------------------------------------------


def prepare_session_platform(session: LiveSession) -> None:
    """At publish, and when a published session's Zoom fields change: the meeting must be the creator's, require
    registration and approve manually.

    Every creator shares the app's Zoom account, so a meeting is the creator's only when the app scheduled it for
    them or when its host is the Zoom user linked on their profile (the demo stand-in has no hosts: there the
    first creator to use an ID owns it). The first use records the meeting as theirs (`ZoomMeeting`), by a
    constraint that also holds when two creators publish one ID at once; an ID that is someone else's is refused
    with the very words used for an ID Zoom does not know, so publishing tells nobody which meetings exist. With
    no meeting ID the app schedules the meeting itself. Raises ValidationError saying what to change, or
    VideoPlatformUnavailable when Zoom cannot be reached. The caller commits.
    """
    if session.platform != Platform.ZOOM:
        return
    platform = video_platform()
    if not session.zoom_meeting_id:
        info = _ask_zoom(
            session,
            lambda: platform.create_meeting(
                NewMeeting(session.title, session.starts_at, session.duration_minutes, session.timezone)
            ),
        )
        session.zoom_meeting_id, session.zoom_kind = info.meeting_id, info.kind
        if not _claim_meeting(info.meeting_id, session.creator_id, "scheduled"):
            raise _not_yours(session)
        return
    # Zoom is asked even when the answer is already known to be "not yours": both refusals then look alike.
    info = _ask_zoom(session, lambda: platform.get_meeting(_ref(session)))
    owner = meeting_owner(session.zoom_meeting_id)
    if owner is None:
        if isinstance(platform, DemoPlatform):
            origin = "demo"
        elif session.creator.zoom_user_id and info.host_id == session.creator.zoom_user_id:
            origin = "host"
        else:
            raise _not_yours(session)
    elif owner != session.creator_id:
        raise _not_yours(session)
    if info.approval_type == ApprovalType.NO_REGISTRATION:
        raise _zoom_field_error(
            _(
                "Registration is off for this Zoom %(kind)s, so the app cannot give attendees their own link. "
                "In Zoom, edit it: set Registration to Required and Approval to Manually approve.",
                kind=_kind(session),
            )
        )
    if info.approval_type == ApprovalType.AUTOMATIC:
        raise _zoom_field_error(
            _(
                "Zoom approves registrations automatically, so anyone who finds the registration link would get "
                "in without paying. In Zoom, edit it and set Approval to Manually approve: the app approves the "
                "attendees who paid."
            )
        )
    if owner is None and not _claim_meeting(session.zoom_meeting_id, session.creator_id, origin):
        raise _not_yours(session)  # another creator took it a moment ago


def _ask_zoom(session: LiveSession, call: Callable[[], MeetingInfo]) -> MeetingInfo:
    """Zoom's answer, or the refusal to show: an unknown meeting reads exactly like someone else's."""
    try:
        return call()
    except MeetingNotFound:
        raise _not_yours(session) from None
    except VideoConfigurationError as error:
        log.warning("Zoom refused the set-up of session %s: %s", session.id, error)
        raise ValidationError(_("Zoom refused the request: %(reason)s", reason=str(error))) from None
    except VideoError as error:
        raise VideoPlatformUnavailable(_("Zoom could not be reached. Please try again in a minute.")) from error


def meeting_owner(meeting_id: str) -> int | None:
    """The creator a Zoom meeting or webinar ID belongs to, if it belongs to anyone yet."""
    return db.session.scalar(select(ZoomMeeting.creator_id).where(ZoomMeeting.meeting_id == meeting_id))


def _claim_meeting(meeting_id: str, creator_id: int, origin: str) -> bool:
    """Record the meeting as the creator's unless it is someone's already; True when it is the creator's now.

    One INSERT … ON CONFLICT DO NOTHING on the primary key: of two creators claiming one ID at once, the second
    waits for the first to commit and then finds the ID taken (no check-then-act). The caller commits.
    """
    insert = postgresql_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(ZoomMeeting)
        .values(meeting_id=meeting_id, creator_id=creator_id, origin=origin, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["meeting_id"])
    )
    return meeting_owner(meeting_id) == creator_id


def _kind(session: LiveSession) -> str:
    return _("webinar") if session.zoom_kind == "webinar" else _("meeting")


def _not_yours(session: LiveSession) -> ValidationError:
    """The one answer for an ID Zoom does not know and for a meeting that is not the creator's."""
    return _zoom_field_error(
        _(
            "You have no Zoom %(kind)s with this ID. Check the ID, whether it is a meeting or a webinar, and that "
            "its host is the Zoom user linked on your profile, or leave the ID empty and the app schedules a "
            "meeting for you.",
            kind=_kind(session),
        )
    )


def _zoom_field_error(message: str) -> ValidationError:
    return ValidationError(message, fields={"zoom_meeting_id": message})


# -- state changes -------------------------------------------------------------------------------------------------


def request_enrollment(order: Order) -> Enrollment:
    """Give the attendee their way in. A plain link is immediate; platforms are enrolled by the worker.

    Called by `confirm_payment`; the caller commits.
    """
    session = order.session
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.order_id == order.id))
    if enrollment is None and session.platform == Platform.LINK:
        # A plain link asks nobody: the row is born enrolled, one INSERT on the payment's path.
        enrollment = Enrollment(order_id=order.id, status=EnrollmentStatus.ENROLLED, join_url=session.join_link)
        db.session.add(enrollment)
        return enrollment
    if enrollment is None:
        enrollment = Enrollment(order_id=order.id, status=EnrollmentStatus.PENDING, next_attempt_at=utcnow())
        db.session.add(enrollment)
    if session.platform == Platform.LINK:
        if enrollment.status == EnrollmentStatus.PENDING:
            transition(enrollment, EnrollmentStatus.ENROLLED, join_url=session.join_link, next_attempt_at=None)
    else:
        enroll_at_once(order, session, enrollment)  # YouTube and the demo platform need no worker
    return enrollment


def enroll_at_once(order: Order, session: LiveSession, enrollment: Enrollment) -> None:
    """Platforms without a network call are enrolled in the payment's own transaction. The caller commits."""
    if enrollment.status != EnrollmentStatus.PENDING:
        return
    db.session.flush()
    if session.platform == Platform.YOUTUBE:
        registration = Registration(registrant_id="", join_url=personal_join_url(order))
    elif session.platform == Platform.ZOOM and isinstance(video_platform(), DemoPlatform):
        registration = video_platform().add_registrant(_ref(session), Attendee.from_name(order.email, order.name))
    else:
        return
    transition(
        enrollment,
        EnrollmentStatus.ENROLLED,
        join_url=registration.join_url,
        registrant_id=registration.registrant_id or None,
        next_attempt_at=None,
    )


def join_destination(order: Order) -> str | None:
    """Where the personal join link leads right now, or None when it must not lead anywhere."""
    enrollment = order.enrollment
    if order.status != OrderStatus.PAID or enrollment is None or enrollment.status != EnrollmentStatus.ENROLLED:
        return None
    if order.session.platform == Platform.YOUTUBE:
        return youtube_stream_url(order.session)
    return enrollment.join_url


def youtube_opens_at(session: LiveSession) -> datetime:
    return session.starts_at - timedelta(minutes=settings().YOUTUBE_ACCESS_MINUTES)


def youtube_stream_url(session: LiveSession, now: datetime | None = None) -> str | None:
    """The unlisted stream's address, for paid attendees only, and only from a little before the start."""
    if (now or utcnow()) < youtube_opens_at(session):
        return None
    return session.youtube_url


def youtube_embed_url(session: LiveSession, now: datetime | None = None) -> str | None:
    url = youtube_stream_url(session, now)
    return embed_url(url) if url else None


@dataclass(frozen=True)
class TicketStream:
    """What a YouTube ticket page shows: the player once the stream is open, else when it opens."""

    opens_at: datetime
    embed_url: str | None


def ticket_stream(order: Order, now: datetime | None = None) -> TicketStream | None:
    session = order.session
    enrollment = order.enrollment
    if session.platform != Platform.YOUTUBE or order.status != OrderStatus.PAID:
        return None
    if enrollment is None or enrollment.status != EnrollmentStatus.ENROLLED:
        return None
    return TicketStream(opens_at=youtube_opens_at(session), embed_url=youtube_embed_url(session, now))


def cancel_enrollment(order: Order) -> Enrollment | None:
    """The seat was refunded or cancelled: the way in is taken back. The caller commits.

    The personal link stops at once (it follows the order's status); the Zoom registrant is cancelled by
    the next tick, outside the caller's transaction, retried until Zoom confirms.
    """
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.order_id == order.id))
    if enrollment is None or enrollment.status == EnrollmentStatus.CANCELLED:
        return enrollment
    remote = bool(enrollment.registrant_id) and order.session.platform == Platform.ZOOM
    transition(enrollment, EnrollmentStatus.CANCELLED, next_attempt_at=utcnow() if remote else None)
    return enrollment


def cancel_session_enrollments(session: LiveSession) -> None:
    """A cancelled session: every way in taken back at once, in a few statements whatever the number of attendees.

    As `cancel_enrollment`, row by row: the personal links stop with the orders' status, and the tick cancels the
    Zoom registrants. The caller commits.
    """
    of_session = Enrollment.order_id.in_(select(Order.id).where(Order.session_id == session.id))
    registrant_due = None
    if session.platform == Platform.ZOOM:
        registrant_due = case((Enrollment.registrant_id.is_not(None), utcnow()), else_=None)
    for current in (EnrollmentStatus.PENDING, EnrollmentStatus.FAILED, EnrollmentStatus.ENROLLED):
        transition_all(Enrollment, [of_session], current, EnrollmentStatus.CANCELLED, next_attempt_at=registrant_due)


def retry_enrollment(order: Order) -> Enrollment:
    """The creator's "retry" button: a failed enrolment starts over. Commits."""
    enrollment = order.enrollment
    if enrollment is None or enrollment.status != EnrollmentStatus.FAILED:
        raise NotFound(_("This attendee has no failed enrolment to retry."))
    if order.status != OrderStatus.PAID:
        raise ValidationError(_("This order is no longer paid."))
    transition(
        enrollment, EnrollmentStatus.PENDING, attempts=0, next_attempt_at=utcnow(), alerted_at=None, claimed_at=None
    )
    db.session.commit()
    return enrollment


def retry_failed_enrollments(session: LiveSession) -> int:
    """Retry every failed enrolment of a session (after the creator fixed the Zoom settings). Commits."""
    count = 0
    for enrollment in failed_enrollments(session):
        if enrollment.order.status == OrderStatus.PAID:
            transition(
                enrollment,
                EnrollmentStatus.PENDING,
                attempts=0,
                next_attempt_at=utcnow(),
                alerted_at=None,
                claimed_at=None,
            )
            count += 1
    db.session.commit()
    return count


def failed_enrollments(session: LiveSession) -> list[Enrollment]:
    return list(
        db.session.scalars(
            select(Enrollment)
            .join(Order, Order.id == Enrollment.order_id)
            .where(Order.session_id == session.id, Enrollment.status == EnrollmentStatus.FAILED)
            .order_by(Enrollment.id)
        )
    )


# -- the tick ----------------------------------------------------------------------------------------------------


def _backoff(attempts: int) -> timedelta:
    config = settings()
    return backoff(attempts, config.ENROLLMENT_RETRY_SECONDS, config.ENROLLMENT_RETRY_CAP_SECONDS)


def enroll_due(now: datetime | None = None, limit: int = 50) -> int:
    """Enrol the attendees whose turn has come; cancel registrants whose seat was taken back; alert creators.

    Returns how many attendees were enrolled. Needs an app context; commits row by row.
    """
    now = now or utcnow()
    enrolled = 0
    due = claim_each(
        Enrollment,
        due=[Enrollment.status == EnrollmentStatus.PENDING, Enrollment.next_attempt_at <= now],
        claim={"next_attempt_at": now + LEASE, "attempts": Enrollment.attempts + 1, "claimed_at": now},
        order_by=[Enrollment.next_attempt_at, Enrollment.id],
        limit=limit,
    )
    for enrollment_id in due:
        enrollment = db.session.execute(
            select(Enrollment).where(Enrollment.id == enrollment_id).execution_options(populate_existing=True)
        ).scalar_one()
        try:
            enrolled += _attempt(enrollment, now)
        except ZoomUnwell:
            break  # the others stay due: the next tick tries again, rather than waiting out Zoom row by row
        except Exception:
            db.session.rollback()
            log.exception("enrollment %s: unexpected failure", enrollment_id)
    _cancel_registrants(now, limit)
    _alert_creators(now)
    return enrolled


def _attempt(enrollment: Enrollment, now: datetime) -> bool:
    attempt = enrollment.attempts
    order = db.session.get(Order, enrollment.order_id)
    session = db.session.get(LiveSession, order.session_id)
    if order.status != OrderStatus.PAID:
        transition(enrollment, EnrollmentStatus.CANCELLED, fence={"attempts": attempt}, next_attempt_at=None)
        db.session.commit()
        return False
    if session.platform != Platform.ZOOM or isinstance(video_platform(), DemoPlatform):
        if session.platform == Platform.LINK:
            registration = Registration("", session.join_link or "")
        elif session.platform == Platform.YOUTUBE:
            registration = Registration("", personal_join_url(order))
        else:
            registration = video_platform().add_registrant(_ref(session), Attendee.from_name(order.email, order.name))
    else:
        db.session.commit()  # no transaction stays open during the call to Zoom
        try:
            registration = video_platform().add_registrant(_ref(session), Attendee.from_name(order.email, order.name))
        except VideoError as error:
            _record_failure(enrollment, attempt, error, now)
            if error.transient:
                raise ZoomUnwell from error
            return False
    try:
        transition(
            enrollment,
            EnrollmentStatus.ENROLLED,
            fence={"attempts": attempt},
            join_url=registration.join_url,
            registrant_id=registration.registrant_id or None,
            next_attempt_at=None,
            last_error=None,
        )
    except ConcurrentUpdate:
        # Cancelled (refund) while Zoom was registering: the new registrant must be cancelled too.
        db.session.rollback()
        if registration.registrant_id:
            db.session.execute(
                update(Enrollment)
                .where(Enrollment.id == enrollment.id, Enrollment.status == EnrollmentStatus.CANCELLED)
                .values(registrant_id=registration.registrant_id, next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
        return False
    plan_join_link_message(order)
    db.session.commit()
    log.info("order %s enrolled on %s (attempt %s)", order.id, session.platform, attempt)
    return True


def _record_failure(enrollment: Enrollment, attempt: int, error: VideoError, now: datetime) -> None:
    message = str(error)[:2000]
    max_attempts = settings().ENROLLMENT_MAX_ATTEMPTS
    log.warning("enrollment %s, attempt %s: %s", enrollment.id, attempt, message)
    if error.transient and attempt < max_attempts:
        delay = _backoff(attempt)
        if error.retry_after:
            delay = max(delay, timedelta(seconds=error.retry_after))
        db.session.execute(
            update(Enrollment)
            .where(
                Enrollment.id == enrollment.id,
                Enrollment.status == EnrollmentStatus.PENDING,
                Enrollment.attempts == attempt,
            )
            .values(last_error=message, next_attempt_at=now + delay, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    else:
        try:
            transition(
                enrollment,
                EnrollmentStatus.FAILED,
                fence={"attempts": attempt},
                last_error=message,
                next_attempt_at=None,
            )
        except ConcurrentUpdate:
            db.session.rollback()
            return
    db.session.commit()


def _cancel_registrants(now: datetime, limit: int) -> int:
    """Cancelled enrolments whose Zoom registrant is still live: cancel it at Zoom, retrying until it holds."""
    done = 0
    due = claim_each(
        Enrollment,
        due=[
            Enrollment.status == EnrollmentStatus.CANCELLED,
            Enrollment.registrant_id.is_not(None),
            Enrollment.next_attempt_at <= now,
        ],
        claim={"next_attempt_at": now + LEASE, "claimed_at": now},
        limit=limit,
    )
    for enrollment_id in due:
        enrollment = db.session.get(Enrollment, enrollment_id)
        order = db.session.get(Order, enrollment.order_id)
        session = db.session.get(LiveSession, order.session_id)
        erased = order.erased_at is not None  # the registrant id alone tells Zoom who; the email is gone
        try:
            video_platform().cancel_registrant(_ref(session), enrollment.registrant_id, "" if erased else order.email)
        except VideoError as error:
            enrollment.last_error = f"cancelling the Zoom registrant: {error}"[:2000]
            enrollment.next_attempt_at = now + _backoff(3) if error.transient else None
            log.warning("enrollment %s: %s", enrollment.id, enrollment.last_error)
        else:
            enrollment.next_attempt_at = None
            done += 1
        if erased and enrollment.next_attempt_at is None:
            enrollment.registrant_id = None  # nothing more to ask Zoom: the last trace of the registration goes
        db.session.commit()
    return done


def _alert_creators(now: datetime) -> int:
    """One email per session to its creator listing the attendees whose enrolment failed for good."""
    claimed = claim_due(
        Enrollment,
        due=[Enrollment.status == EnrollmentStatus.FAILED, Enrollment.alerted_at.is_(None)],
        claim={"alerted_at": now},
        returning=[Enrollment.order_id],
    )
    by_session: dict[int, list[int]] = defaultdict(list)
    if claimed:
        orders = select(Order.id, Order.session_id).where(Order.id.in_([order_id for _id, order_id in claimed]))
        sessions = {order_id: session_id for order_id, session_id in db.session.execute(orders)}
        db.session.commit()
        for enrollment_id, order_id in claimed:
            by_session[sessions[order_id]].append(enrollment_id)
    sent = 0
    for session_id, enrollment_ids in by_session.items():
        session = db.session.get(LiveSession, session_id)
        enrollments = [db.session.get(Enrollment, i) for i in enrollment_ids]
        try:
            with worker_context(), force_locale(session.creator.locale or DEFAULT_LOCALE):
                message = _alert_message(session, enrollments)
            mail.send(message)
            sent += 1
        except Exception as error:  # noqa: BLE001 - any mail failure: un-mark, so the next tick tries again
            log.warning("could not alert the creator of session %s: %s", session_id, error)
            db.session.execute(
                update(Enrollment)
                .where(Enrollment.id.in_(enrollment_ids))
                .values(alerted_at=None)
                .execution_options(synchronize_session=False)
            )
            db.session.commit()
    return sent


def _alert_message(session: LiveSession, enrollments: list[Enrollment]) -> Message:
    base = settings().BASE_URL
    lines = [
        _('Some attendees of "%(title)s" could not be enrolled on Zoom automatically.', title=session.title),
        "",
    ]
    for enrollment in enrollments:
        order = enrollment.order
        lines.append(f"- {order.name} <{order.email}>: {enrollment.last_error or '?'}")
    lines += [
        "",
        _('They have paid and their seat is safe. Fix the cause above, then press "Retry" on the session page:'),
        f"{base}/dashboard/sessions/{session.id}",
    ]
    return Message(
        subject=_('Action needed: attendees not enrolled in "%(title)s"', title=session.title),
        recipients=[session.creator.email],
        body="\n".join(lines),
    )


# -- Zoom webhooks -------------------------------------------------------------------------------------------------

STARTED = {"meeting.started", "webinar.started"}
ENDED = {"meeting.ended", "webinar.ended"}
JOINED = {"meeting.participant_joined", "webinar.participant_joined"}
# How far from a session's start (beyond its length) an occurrence may start and still be that session.
OCCURRENCE_MARGIN = timedelta(hours=1)


def handle_zoom_event(event: VideoEvent) -> str:
    """Apply a verified Zoom event exactly once. Returns the outcome, also stored on the event row."""
    record = record_event_once("zoom", event.event_id[:255], event.type[:100], event.raw)
    if record is None:
        return "duplicate"
    record.outcome = _apply_zoom_event(event, record)
    db.session.commit()
    return record.outcome


def _sessions_for(meeting_id: str | None, event_type: str) -> list[LiveSession]:
    """The sessions sold on this meeting or webinar by the creator it belongs to (drafts sell nothing)."""
    if not meeting_id:
        return []
    kind = "webinar" if event_type.startswith("webinar.") else "meeting"
    return list(
        db.session.scalars(
            select(LiveSession)
            .join(ZoomMeeting, ZoomMeeting.meeting_id == LiveSession.zoom_meeting_id)
            .where(
                LiveSession.platform == Platform.ZOOM,
                LiveSession.zoom_meeting_id == meeting_id,
                LiveSession.zoom_kind == kind,
                LiveSession.status != SessionStatus.DRAFT,
                ZoomMeeting.creator_id == LiveSession.creator_id,
            )
            .order_by(LiveSession.starts_at, LiveSession.id)
        )
    )


def _occurrence(sessions: list[LiveSession], event: VideoEvent) -> list[LiveSession]:
    """The sessions an event is about: a recurring meeting keeps one ID for every occurrence, so each event is
    matched to one occurrence (sessions sharing a start are one occurrence sold twice).

    By Zoom's per-occurrence uuid once a session knows it; else by the start nearest the event's, within the
    session's length plus `OCCURRENCE_MARGIN` either way. A session keeps the first uuid it is matched with.
    """
    if event.occurrence_uuid:
        known = {s.starts_at for s in sessions if s.zoom_occurrence_uuid == event.occurrence_uuid}
        if known:
            return [s for s in sessions if s.starts_at in known]
    joined = event.participant.joined_at if event.participant else None
    moment = event.started_at or joined or event.ended_at or utcnow()
    near = [
        s for s in sessions if abs(s.starts_at - moment) <= timedelta(minutes=s.duration_minutes) + OCCURRENCE_MARGIN
    ]
    if not near:
        return []
    starts = min(near, key=lambda s: (abs(s.starts_at - moment), s.starts_at)).starts_at
    chosen = [s for s in near if s.starts_at == starts]
    for session in chosen:
        if event.occurrence_uuid and session.zoom_occurrence_uuid is None:
            session.zoom_occurrence_uuid = event.occurrence_uuid[:128]
    return chosen


def _apply_zoom_event(event: VideoEvent, record: ProviderEvent) -> str:
    if event.type not in STARTED | ENDED | JOINED:
        return "ignored"
    candidates = _sessions_for(event.meeting_id, event.type)
    if not candidates:
        return "unknown_meeting"
    sessions = _occurrence(candidates, event)
    if not sessions:
        return "unknown_occurrence"
    now = utcnow()
    if event.type in STARTED:
        for session in sessions:
            session.started_at = session.started_at or event.started_at or now
        return "started"
    if event.type in ENDED:
        for session in sessions:
            session.ended_at = event.ended_at or now
            _mark_absentees(session)
            session_ended(session)
        return "ended"
    enrollment = _enrollment_of(sessions, event)
    if enrollment is None:
        return "unknown_participant"
    enrollment.attended = True
    record.order_id = enrollment.order_id
    return "attended"


def _enrollment_of(sessions: list[LiveSession], event: VideoEvent) -> Enrollment | None:
    """The attendee behind a participant: by registrant id, else by email among the paid orders."""
    participant = event.participant
    if participant is None:
        return None
    session_ids = [s.id for s in sessions]
    query = select(Enrollment).join(Order, Order.id == Enrollment.order_id).where(Order.session_id.in_(session_ids))
    if participant.registrant_id:
        found = db.session.scalar(query.where(Enrollment.registrant_id == participant.registrant_id))
        if found is not None:
            return found
    if participant.email:
        return db.session.scalar(
            query.where(func.lower(Order.email) == participant.email.strip().lower(), Order.status == OrderStatus.PAID)
            .order_by(Enrollment.id)
            .limit(1)
        )
    return None


def _mark_absentees(session: LiveSession) -> None:
    """Once attendance was reported for someone, the enrolled attendees never reported did not join.

    Without any participant_joined event (the app is not subscribed to it) attendance stays unknown.
    """
    enrollments = list(
        db.session.scalars(
            select(Enrollment)
            .join(Order, Order.id == Enrollment.order_id)
            .where(Order.session_id == session.id, Enrollment.status == EnrollmentStatus.ENROLLED)
        )
    )
    if any(e.attended for e in enrollments):
        for enrollment in enrollments:
            if enrollment.attended is None:
                enrollment.attended = False
