"""A recurring Zoom meeting keeps one ID for every occurrence: each Zoom event belongs to one session only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import LiveShop, session_payload
from tests.zoom_setup import link_creator
from webinar_pay.extensions import db
from webinar_pay.models import Enrollment, LiveSession, ProviderEvent, SessionStatus, utcnow
from webinar_pay.services.creators import create_creator
from webinar_pay.services.enrollment import enroll_due

GRACE = timedelta(minutes=30)


def zoom_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Shop(LiveShop):
    def __init__(self, server, token: str, fake_stripe, fake_zoom):
        super().__init__(server, token, stripe=fake_stripe)
        self.zoom = fake_zoom
        self.hook = server.url + "/webhooks/zoom"

    def weekly_sessions(self, kind: str, weeks: int = 2) -> tuple[str, list[int], list[datetime]]:
        """One recurring meeting, and one session per week on it (the first starts in two hours)."""
        first = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
        starts = [first + timedelta(weeks=week) for week in range(weeks)]
        meeting_id = self.zoom.add_meeting(kind, start_time=zoom_time(first), duration=60, recurring=True)
        ids = [
            self.session(
                platform="zoom",
                join_link=None,
                zoom_meeting_id=meeting_id,
                zoom_kind=kind,
                duration_minutes=60,
                starts_at=start.isoformat(),
                title=f"Week {week + 1}",
            )  # fmt: skip
            for week, start in enumerate(starts)
        ]
        return meeting_id, ids, starts

    def buy(self, session_id: int, email: str) -> int:
        return self.paid_order(session_id, email, email.split("@")[0].title())["order_id"]

    def send(self, event) -> str:
        response = event.post(self.hook)
        assert response.status_code == 200, response.text
        return response.json()["outcome"]

    def session_row(self, session_id: int) -> LiveSession:
        with self.app.app_context():
            session = db.session.get(LiveSession, session_id)
            db.session.expunge(session)
            return session

    def attended(self, order_id: int) -> bool | None:
        with self.app.app_context():
            return db.session.scalar(select(Enrollment.attended).where(Enrollment.order_id == order_id))


@pytest.fixture
def shop(live_server, create_creator, fake_stripe, fake_zoom, smtp) -> Shop:
    server = live_server(**fake_zoom.config(), **smtp.config, ZOOM_RETRY_BACKOFF_SECONDS=0, ZOOM_MAX_RETRIES=0,
                         THANK_YOU_GRACE_MINUTES=int(GRACE.total_seconds() // 60))  # fmt: skip
    shop = Shop(server, create_creator()[1], fake_stripe, fake_zoom)
    link_creator(shop.app, fake_zoom)
    return shop


def subjects(smtp, email: str) -> list[str]:
    return [message.subject for message in smtp.to(email)]


@pytest.mark.parametrize("kind", ["meeting", "webinar"])
def test_two_weekly_sessions_on_one_meeting_each_get_only_their_own_start_end_attendance_and_thank_you(
    shop, fake_zoom, smtp, kind
):
    meeting_id, (week1, week2), (start1, start2) = shop.weekly_sessions(kind)
    bo1, bo2 = shop.buy(week1, "bo@example.com"), shop.buy(week2, "bo@example.com")  # one registrant at Zoom
    ann2 = shop.buy(week2, "ann@example.com")
    with shop.app.app_context():
        assert enroll_due() == 3
    bo = next(r for r in fake_zoom.registrants_of(meeting_id, kind) if r["email"] == "bo@example.com")

    # This week's occurrence: started five minutes late, Bo joined, ended after 70 minutes.
    real_start = zoom_time(start1 + timedelta(minutes=5))
    uuid1 = fake_zoom.occurrence_uuid(meeting_id, real_start, kind)
    assert shop.send(fake_zoom.event(f"{kind}.started", meeting_id, kind, start_time=real_start)) == "started"
    joined = fake_zoom.participant_joined(meeting_id, registrant_id=bo["id"], email=bo["email"], kind=kind,
                                          start_time=real_start, join_time=real_start)  # fmt: skip
    assert shop.send(joined) == "attended"
    ann_early = fake_zoom.participant_joined(meeting_id, email="ann@example.com", kind=kind, start_time=real_start)
    assert shop.send(ann_early) == "unknown_participant"  # Ann's seat is next week's, not this one
    # Someone joins this occurrence three hours in (it ran long): too far from its start to tell by time, but the
    # event carries the occurrence's uuid, which the session learnt from the first event.
    late = fake_zoom.participant_joined(meeting_id, email="bo@example.com", kind=kind, start_time=None,
                                        uuid=uuid1, join_time=zoom_time(start1 + timedelta(hours=3)))  # fmt: skip
    assert shop.send(late) == "attended"
    end1 = start1 + timedelta(minutes=75)
    ended = fake_zoom.event(f"{kind}.ended", meeting_id, kind, start_time=real_start, end_time=zoom_time(end1))
    assert shop.send(ended) == "ended"

    first, second = shop.session_row(week1), shop.session_row(week2)
    assert (first.started_at, first.ended_at) == (start1 + timedelta(minutes=5), end1)
    assert first.zoom_occurrence_uuid == uuid1
    assert (second.started_at, second.ended_at, second.zoom_occurrence_uuid) == (None, None, None)
    assert (shop.attended(bo1), shop.attended(bo2), shop.attended(ann2)) == (True, None, None)

    shop.dispatch(utcnow() + GRACE + timedelta(minutes=1))
    assert "Thank you for joining Week 1" in subjects(smtp, "bo@example.com")
    after_week1 = subjects(smtp, "bo@example.com") + subjects(smtp, "ann@example.com")
    assert not [s for s in after_week1 if s.startswith(("Thank you", "Sorry we missed you")) and "Week 2" in s]

    # Next week's occurrence has a uuid of its own: Ann joins, Bo does not.
    real_start2 = zoom_time(start2 - timedelta(minutes=2))
    assert shop.send(fake_zoom.event(f"{kind}.started", meeting_id, kind, start_time=real_start2)) == "started"
    ann = fake_zoom.participant_joined(meeting_id, email="ann@example.com", kind=kind, start_time=real_start2)
    assert shop.send(ann) == "attended"
    end2 = start2 + timedelta(minutes=58)
    ended2 = fake_zoom.event(f"{kind}.ended", meeting_id, kind, start_time=real_start2, end_time=zoom_time(end2))
    assert shop.send(ended2) == "ended"
    first_again, second = shop.session_row(week1), shop.session_row(week2)
    assert (first_again.started_at, first_again.ended_at) == (first.started_at, first.ended_at)
    assert second.ended_at == end2 and second.zoom_occurrence_uuid not in (None, uuid1)
    assert (shop.attended(bo1), shop.attended(bo2), shop.attended(ann2)) == (True, False, True)

    shop.dispatch(utcnow() + GRACE + timedelta(minutes=2))
    assert "Thank you for joining Week 2" in subjects(smtp, "ann@example.com")
    assert subjects(smtp, "bo@example.com").count("Thank you for joining Week 1") == 1
    assert "Sorry we missed you at Week 2" in subjects(smtp, "bo@example.com")
    assert "Thank you for joining Week 2" not in subjects(smtp, "bo@example.com")


def test_an_event_far_from_every_occurrence_is_recorded_as_unknown_occurrence(shop, fake_zoom):
    meeting_id, (week1, week2), (start1, _start2) = shop.weekly_sessions("meeting")
    midweek = zoom_time(start1 + timedelta(days=3))  # an occurrence nobody sold a seat for
    assert shop.send(fake_zoom.event("meeting.started", meeting_id, start_time=midweek)) == "unknown_occurrence"
    joined = fake_zoom.participant_joined(meeting_id, email="bo@example.com", start_time=midweek)
    assert shop.send(joined) == "unknown_occurrence"
    ended = fake_zoom.event("meeting.ended", meeting_id, start_time=midweek,
                            end_time=zoom_time(start1 + timedelta(days=3, hours=1)))  # fmt: skip
    assert shop.send(ended) == "unknown_occurrence"
    just_outside = zoom_time(start1 + timedelta(minutes=60) + timedelta(hours=1, seconds=1))  # length + margin
    assert shop.send(fake_zoom.event("meeting.started", meeting_id, start_time=just_outside)) == "unknown_occurrence"

    for session_id in (week1, week2):
        session = shop.session_row(session_id)
        assert (session.started_at, session.ended_at, session.zoom_occurrence_uuid) == (None, None, None)
    with shop.app.app_context():
        outcomes = db.session.scalars(select(ProviderEvent.outcome).where(ProviderEvent.provider == "zoom")).all()
    assert outcomes == ["unknown_occurrence"] * 4

    on_time = zoom_time(start1 + timedelta(minutes=60) + timedelta(minutes=59))  # within length + margin: week 1
    assert shop.send(fake_zoom.event("meeting.started", meeting_id, start_time=on_time)) == "started"
    assert shop.session_row(week1).started_at is not None and shop.session_row(week2).started_at is None


def test_events_about_a_meeting_reach_only_the_sessions_of_the_creator_it_belongs_to(shop, fake_zoom):
    """A session published before meetings had owners may sit on someone else's meeting: it hears nothing."""
    meeting_id, (week1,), (start1,) = shop.weekly_sessions("meeting", weeks=1)
    status, other = shop.creator.post("/api/v1/sessions", session_payload(
        platform="zoom", join_link=None, zoom_meeting_id=meeting_id, starts_at=start1.isoformat()))  # fmt: skip
    assert status == 201
    with shop.app.app_context():  # what the upgrade leaves of an old hijack: another creator's published session
        intruder = create_creator("intruder@example.com", "Mallory", "correct horse battery")
        session = db.session.get(LiveSession, other["id"])
        session.creator_id, session.status = intruder.id, SessionStatus.PUBLISHED
        db.session.commit()
    assert shop.send(fake_zoom.event("meeting.started", meeting_id, start_time=zoom_time(start1))) == "started"
    assert shop.session_row(week1).started_at is not None
    assert shop.session_row(other["id"]).started_at is None
