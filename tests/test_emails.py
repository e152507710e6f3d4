"""Scheduled emails over real SMTP: an aiosmtpd server on 127.0.0.1, the real Flask-Mail, a fake clock.

Seats are bought over HTTP through the fake Stripe (its signed webhook, applied by the inbox), as in production;
the dispatcher is then run at chosen instants with `dispatch_due(now=...)`.
"""

from __future__ import annotations

import re
import socket
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from tests.conftest import LiveShop
from tests.fakes.smtp_server import SmtpServer
from webinar_pay.extensions import db
from webinar_pay.models import (
    Enrollment,
    EnrollmentStatus,
    LiveSession,
    Order,
    OrderStatus,
    OutboxMessage,
    OutboxStatus,
    utcnow,
)
from webinar_pay.services.outbox.dispatch import dispatch_due
from webinar_pay.services.outbox.planning import (
    plan_join_link_message,
    session_ended,
)


class Shop(LiveShop):
    def starts_at(self, session_id: int) -> datetime:
        return self.db(lambda: db.session.get(LiveSession, session_id).starts_at)


@pytest.fixture
def shop(live_server, create_creator, fake_stripe, smtp) -> Shop:
    """A running app selling by card through the fake Stripe and sending to the test SMTP server."""
    server = live_server(
        **smtp.config,
        MAIL_DEFAULT_SENDER="Ada Teacher via webinar_pay <sessions@example.com>",
        MAIL_RETRY_BASE_SECONDS=10,
        MAIL_RETRY_MAX_SECONDS=40,
        MAIL_MAX_ATTEMPTS=4,
        OUTBOX_CLAIM_TIMEOUT_SECONDS=300,
        THANK_YOU_GRACE_MINUTES=30,
    )
    return Shop(server, create_creator()[1], stripe=fake_stripe)


@pytest.fixture
def shop_on(live_server, create_creator, fake_stripe):
    """`shop_on(**settings)`: the same with other mail settings (an SMTP server that is down, a silent relay)."""

    def start(**settings) -> Shop:
        return Shop(live_server(**settings), create_creator()[1], stripe=fake_stripe)

    return start


def _field(ics: str, name: str) -> str:
    match = re.search(rf"^{name}[;:](.*)$", ics.replace("\r\n ", ""), re.MULTILINE)
    assert match, f"{name} missing from {ics}"
    return match.group(1).strip()


def test_confirmation_over_real_smtp(shop, smtp):
    starts = (utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    session_id = shop.session(price=4900, currency="EUR", starts_at=starts.isoformat(), timezone="America/New_York")
    order_id = shop.paid_order(session_id, email="bo@example.com", name="Bo Buyer")["order_id"]

    result = shop.dispatch(utcnow())
    assert result.sent == 1
    [mail] = smtp.to("bo@example.com")
    assert mail.recipients == ["bo@example.com"]
    assert mail.subject == "You are in: Watercolour basics"
    assert mail.message["Reply-To"] == "creator@example.com"
    assert "sessions@example.com" in mail.message["From"]
    new_york = starts.astimezone(ZoneInfo("America/New_York"))
    for body in (mail.text, mail.html):
        assert "Bo Buyer" in body
        assert "€49.00" in body
        assert new_york.strftime("%H:%M") in body and "Eastern" in body
        assert starts.strftime("%H:%M") in body and "Coordinated Universal Time" in body
        assert f"/j/{order_id}." in body  # the personal join link on our domain, never the raw platform URL
        assert "meet.example.com" not in body
        assert "refund" in body
    ics = mail.ics
    assert _field(ics, "METHOD") == "REQUEST"
    assert _field(ics, "UID") == f"order-{order_id}@127.0.0.1"
    assert _field(ics, "SEQUENCE") == "0"
    assert _field(ics, "DTSTART") == starts.strftime("%Y%m%dT%H%M%SZ")
    assert _field(ics, "DTEND") == (starts + timedelta(minutes=90)).strftime("%Y%m%dT%H%M%SZ")
    assert _field(ics, "SUMMARY") == "Watercolour basics"
    assert "mailto:bo@example.com" in _field(ics, "ATTENDEE")

    assert shop.dispatch(utcnow()).sent == 0  # nothing twice
    assert len(smtp.to("bo@example.com")) == 1
    statuses = shop.emails(order_id)
    assert statuses["confirmation"] == "sent"
    assert {kind for kind in statuses} == {"confirmation", "reminder:1440", "reminder:60", "thank_you"}


def _next_dst_change(zone: str, after: datetime) -> datetime:
    """The first local midnight (as UTC) of a day on which the zone's UTC offset changes."""
    tz = ZoneInfo(zone)
    day = after.astimezone(tz).replace(hour=12, minute=0, second=0, microsecond=0)
    for _i in range(400):
        if (day + timedelta(days=1)).utcoffset() != day.utcoffset():
            return day + timedelta(days=1)
        day = (day + timedelta(days=1)).replace(hour=12)
    raise AssertionError("no DST change within a year")


def test_reminders_fall_at_the_right_instants_across_a_dst_change(shop, smtp):
    # The session is at 10:00 Paris time on the day after the clocks change; its "24 hours before"
    # reminder falls on the other side of the change, where 10:00 Paris is a different UTC hour.
    change_day = _next_dst_change("Europe/Paris", utcnow() + timedelta(days=3))
    local_start = change_day.astimezone(ZoneInfo("Europe/Paris")).replace(hour=10, minute=0)
    starts = local_start.astimezone(UTC)
    session_id = shop.session(
        starts_at=local_start.replace(tzinfo=None).isoformat(), reminder_offsets_minutes=[1440, 60]
    )
    assert shop.starts_at(session_id) == starts
    shop.paid_order(session_id, email="dst@example.com")
    shop.dispatch(utcnow())
    assert [m.subject for m in smtp.to("dst@example.com")] == ["You are in: Watercolour basics"]

    day_before = starts - timedelta(minutes=1440)
    assert day_before.astimezone(ZoneInfo("Europe/Paris")).hour != 10  # the wall clock moved, the gap did not
    assert shop.dispatch(day_before - timedelta(seconds=1)).sent == 0
    assert shop.dispatch(day_before).sent == 1
    assert shop.dispatch(starts - timedelta(minutes=60, seconds=1)).sent == 0
    assert shop.dispatch(starts - timedelta(minutes=60)).sent == 1
    reminders = smtp.to("dst@example.com")[1:]
    assert [m.subject for m in reminders] == [
        "Reminder: Watercolour basics starts tomorrow at this time",
        "Reminder: Watercolour basics starts in one hour",
    ]
    for mail in reminders:
        assert "10:00" in mail.text and starts.strftime("%H:%M") in mail.text

    assert shop.dispatch(starts + timedelta(minutes=90 + 29)).sent == 0
    assert shop.dispatch(starts + timedelta(minutes=90 + 30)).sent == 1
    thanks = smtp.to("dst@example.com")[-1]
    assert thanks.subject == "Thank you for joining Watercolour basics"
    assert "mailto:creator@example.com" in thanks.html
    assert len(smtp.to("dst@example.com")) == 4


def test_a_reminder_whose_time_has_passed_is_never_sent(shop, smtp):
    starts = utcnow() + timedelta(minutes=45)
    session_id = shop.session(starts_at=starts.isoformat(), reminder_offsets_minutes=[1440, 60, 10])
    order_id = shop.paid_order(session_id, email="late@example.com")["order_id"]
    planned = shop.outbox(order_id)
    assert "reminder:1440" not in planned and "reminder:60" not in planned
    assert planned["reminder:10"] == ("pending", shop.starts_at(session_id) - timedelta(minutes=10))

    shop.dispatch(utcnow())
    shop.dispatch(shop.starts_at(session_id) - timedelta(minutes=10))
    assert [m.subject for m in smtp.to("late@example.com")] == [
        "You are in: Watercolour basics",
        "Reminder: Watercolour basics starts in 10 minutes",
    ]


def test_moved_session_moves_reminders_and_sends_an_update(shop, smtp):
    starts = (utcnow() + timedelta(days=5)).replace(second=0, microsecond=0)
    session_id = shop.session(starts_at=starts.isoformat(), reminder_offsets_minutes=[60])
    order_id = shop.paid_order(session_id, email="moved@example.com")["order_id"]
    shop.dispatch(utcnow())

    new_start = starts + timedelta(days=2, hours=3)
    status, body = shop.creator.patch(f"/api/v1/sessions/{session_id}", {"starts_at": new_start.isoformat()})
    assert status == 200, body
    planned = shop.outbox(order_id)
    assert planned["reminder:60"] == ("pending", new_start - timedelta(minutes=60))
    assert planned["thank_you"] == ("pending", new_start + timedelta(minutes=90 + 30))

    shop.dispatch(utcnow())
    update_mail = smtp.to("moved@example.com")[-1]
    assert update_mail.subject == "New time: Watercolour basics"
    assert new_start.strftime("%H:%M") in update_mail.text
    assert _field(update_mail.ics, "SEQUENCE") == "1"
    assert _field(update_mail.ics, "UID") == f"order-{order_id}@127.0.0.1"
    assert _field(update_mail.ics, "DTSTART") == new_start.strftime("%Y%m%dT%H%M%SZ")

    assert shop.dispatch(starts - timedelta(minutes=60)).sent == 0  # the old reminder time is empty now
    assert shop.dispatch(new_start - timedelta(minutes=60)).sent == 1
    assert len(smtp.to("moved@example.com")) == 3

    # A second move: the same update message goes out again, with the next SEQUENCE.
    status, _body = shop.creator.patch(
        f"/api/v1/sessions/{session_id}", {"starts_at": (new_start + timedelta(days=1)).isoformat()}
    )
    assert status == 200
    shop.dispatch(utcnow())
    assert _field(smtp.to("moved@example.com")[-1].ics, "SEQUENCE") == "2"


def test_cancelled_session_cancels_reminders_and_tells_attendees(shop, smtp):
    starts = utcnow() + timedelta(days=2)
    session_id = shop.session(starts_at=starts.isoformat(), price=1500, currency="USD")
    shop.paid_order(session_id, email="c1@example.com")
    shop.paid_order(session_id, email="c2@example.com")
    shop.dispatch(utcnow())

    cancelled = shop.cancel_session(session_id)
    assert cancelled.status_code == 200 and "2 attendees are being refunded" in cancelled.text
    shop.dispatch(utcnow())
    for address in ("c1@example.com", "c2@example.com"):
        confirmation, notice = smtp.to(address)
        assert notice.subject == "Cancelled: Watercolour basics"
        assert "$15.00" in notice.text and "refunded" in notice.text
        assert _field(notice.ics, "METHOD") == "CANCEL"
        assert _field(notice.ics, "STATUS") == "CANCELLED"
        assert _field(notice.ics, "SEQUENCE") == "1"
        assert _field(notice.ics, "UID") == _field(confirmation.ics, "UID")
    assert shop.dispatch(shop.starts_at(session_id)).sent == 0  # reminders never go out
    assert shop.dispatch(shop.starts_at(session_id) + timedelta(days=1)).sent == 0
    assert len(smtp.to("c1@example.com")) == 2


def test_refunded_order_gets_a_refund_email_and_nothing_else(shop, smtp):
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=2)).isoformat())
    order_id = shop.paid_order(session_id, email="refund@example.com")["order_id"]
    shop.dispatch(utcnow())

    status, body = shop.refund(order_id)
    assert status == 201 and body["order"]["status"] == "refunded", body
    assert shop.dispatch(utcnow()).sent == 1
    notice = smtp.to("refund@example.com")[-1]
    assert notice.subject == "Refund: Watercolour basics"
    assert "€25.00" in notice.text and "€25.00" in notice.html
    assert _field(notice.ics, "METHOD") == "CANCEL"
    assert shop.emails(order_id) == {"confirmation": "sent", "refund": "sent", "reminder:1440": "cancelled",
                                     "reminder:60": "cancelled", "thank_you": "cancelled"}  # fmt: skip
    assert shop.dispatch(shop.starts_at(session_id) + timedelta(days=1)).sent == 0


def test_join_link_follows_when_enrolment_completes_later(shop, smtp):
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=2)).isoformat())
    order_id = shop.paid_order(session_id, email="later@example.com")["order_id"]

    def enrolment(status: str):
        def change():
            db.session.execute(update(Enrollment).where(Enrollment.order_id == order_id).values(status=status))

        return change

    shop.db(enrolment(EnrollmentStatus.PENDING))
    with shop.app.app_context():
        assert plan_join_link_message(db.session.get(Order, order_id)) is False  # confirmation not out yet
    shop.dispatch(utcnow())
    [confirmation] = smtp.to("later@example.com")
    assert "/j/" not in confirmation.text and "follows in a separate email" in confirmation.text

    shop.db(enrolment(EnrollmentStatus.ENROLLED))
    assert shop.db(lambda: plan_join_link_message(db.session.get(Order, order_id))) is True
    assert shop.db(lambda: plan_join_link_message(db.session.get(Order, order_id))) is False  # never twice
    shop.dispatch(utcnow())
    link = smtp.to("later@example.com")[-1]
    assert link.subject == "Your join link for Watercolour basics"
    assert f"/j/{order_id}." in link.text and f"/j/{order_id}." in link.html
    assert len(smtp.to("later@example.com")) == 2


def test_one_connection_per_batch_and_a_refused_recipient_fails_visibly(shop, smtp):
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=2)).isoformat())
    smtp.refuse("nobody@example.com")
    orders = {address: shop.paid_order(session_id, email=address)["order_id"]
              for address in ("a@example.com", "nobody@example.com", "b@example.com")}  # fmt: skip
    connections = smtp.connections
    result = shop.dispatch(utcnow())
    assert (result.sent, result.failed) == (2, 1)
    assert smtp.connections == connections + 1
    assert len(smtp.to("a@example.com")) == len(smtp.to("b@example.com")) == 1
    query = select(OutboxMessage).where(
        OutboxMessage.order_id == orders["nobody@example.com"], OutboxMessage.kind == "confirmation"
    )
    status, error, attempts = shop.db(
        lambda: (lambda row: (row.status, row.last_error, row.attempts))(db.session.scalar(query))
    )
    assert status == "failed" and "550 5.1.1 No such user" in error and attempts == 1


def test_temporary_refusal_is_retried_with_backoff(shop, smtp):
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=2)).isoformat())
    smtp.refuse("busy@example.com", "451 4.2.1 Mailbox busy, try later")
    shop.paid_order(session_id, email="busy@example.com")
    now = utcnow()
    assert shop.dispatch(now).retried == 1
    assert shop.dispatch(now + timedelta(seconds=9)).sent == 0  # first backoff: 10 s
    assert shop.dispatch(now + timedelta(seconds=10)).retried == 1  # second: 20 s
    smtp.accept("busy@example.com")
    assert shop.dispatch(now + timedelta(seconds=29)).sent == 0
    assert shop.dispatch(now + timedelta(seconds=30)).sent == 1
    assert len(smtp.to("busy@example.com")) == 1


def test_smtp_down_then_up_delivers_every_message_once(shop_on):
    server = SmtpServer()  # not started: connections are refused
    shop = shop_on(**server.config, MAIL_RETRY_BASE_SECONDS=10, MAIL_RETRY_MAX_SECONDS=40, MAIL_MAX_ATTEMPTS=6)
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=2)).isoformat())
    addresses = [f"down{i}@example.com" for i in range(5)]
    for address in addresses:
        shop.paid_order(session_id, email=address)
    now = utcnow()
    assert shop.dispatch(now).retried == 5
    assert shop.dispatch(now + timedelta(seconds=10)).retried == 5
    with server:
        assert shop.dispatch(now + timedelta(seconds=29)).sent == 0  # still waiting out the backoff
        assert shop.dispatch(now + timedelta(seconds=30)).sent == 5
        assert shop.dispatch(now + timedelta(seconds=300)).sent == 0
        for address in addresses:
            assert [m.subject for m in server.to(address)] == ["You are in: Watercolour basics"]


def test_smtp_down_for_too_long_fails_visibly(shop_on):
    server = SmtpServer()
    shop = shop_on(**server.config, MAIL_RETRY_BASE_SECONDS=10, MAIL_MAX_ATTEMPTS=2)
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=2)).isoformat())
    order_id = shop.paid_order(session_id, email="gone@example.com")["order_id"]
    now = utcnow()
    assert shop.dispatch(now).retried == 1
    assert shop.dispatch(now + timedelta(seconds=10)).failed == 1
    assert shop.emails(order_id)["confirmation"] == "failed"


def test_a_dispatcher_killed_mid_batch_loses_nothing_and_doubles_nothing(shop, smtp):
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=2)).isoformat())
    addresses = [f"crash{i}@example.com" for i in range(6)]
    for address in addresses:
        shop.paid_order(session_id, email=address)
    now = utcnow()

    # A worker claimed all six, sent and recorded the first two, then died.
    def crashed_worker():
        rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "confirmation")
                                  .order_by(OutboxMessage.id)).all()  # fmt: skip
        for index, row in enumerate(rows):
            row.status, row.claimed_at = OutboxStatus.SENDING, now - timedelta(minutes=1)
            if index < 2:
                row.status, row.sent_at = OutboxStatus.SENT, now - timedelta(minutes=1)

    shop.db(crashed_worker)
    assert shop.dispatch(now).sent == 0  # the claims are fresh: another worker may still be on them
    result = shop.dispatch(now + timedelta(seconds=301))
    assert (result.recovered, result.sent) == (4, 4)
    assert shop.dispatch(now + timedelta(seconds=900)).sent == 0
    assert sum(len(smtp.to(address)) for address in addresses) == 4  # the first two were sent before the crash
    assert shop.count(OutboxMessage, OutboxMessage.status == "sent") == 6


def _many_due_messages(app, count: int, session_id: int) -> None:
    with app.app_context():
        session = db.session.get(LiveSession, session_id)
        session.capacity = count + 10
        now = utcnow()
        orders = [
            Order(session_id=session_id, name=f"Racer {i}", email=f"racer{i}@example.com", amount=0, currency="EUR",
                  provider="free", status=OrderStatus.PAID, holds_seat=False, token_nonce=f"{i:032d}", paid_at=now)
            for i in range(count)
        ]  # fmt: skip
        db.session.add_all(orders)
        db.session.flush()
        db.session.add_all(
            Enrollment(order_id=o.id, status=EnrollmentStatus.ENROLLED, join_url="https://x.example") for o in orders
        )
        db.session.add_all(
            OutboxMessage(order_id=o.id, kind="confirmation", due_at=now, status=OutboxStatus.PENDING, attempts=0)
            for o in orders
        )
        db.session.commit()


@pytest.mark.parametrize("count", [500])
def test_two_dispatchers_racing_send_each_message_exactly_once(shop, smtp, count):
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=2)).isoformat(), price=0)
    _many_due_messages(shop.app, count, session_id)
    now = utcnow() + timedelta(seconds=1)
    sent_by: list[int] = [0, 0]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker(index: int) -> None:
        try:
            start.wait()
            with shop.app.app_context():
                while True:
                    result = dispatch_due(now=now, limit=25)
                    if result.sent == 0 and result.failed == 0 and result.retried == 0:
                        break
                    sent_by[index] += result.sent
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sum(sent_by) == count
    received = [rcpt for item in smtp.received for rcpt in item.recipients]
    assert len(received) == count and len(set(received)) == count


def test_thank_you_follows_the_real_end_and_attendance(shop, smtp):
    starts = (utcnow() + timedelta(days=1)).replace(second=0, microsecond=0)
    session_id = shop.session(starts_at=starts.isoformat(), reminder_offsets_minutes=[])
    shop.paid_order(session_id, email="came@example.com")
    absent = shop.paid_order(session_id, email="absent@example.com")["order_id"]
    shop.dispatch(utcnow())
    scheduled = starts + timedelta(minutes=90 + 30)

    # Zoom says the session started and has not said it ended: the thank-you waits for the real end.
    shop.db(lambda: setattr(db.session.get(LiveSession, session_id), "started_at", starts))
    assert shop.dispatch(scheduled).sent == 0
    real_end = scheduled + timedelta(minutes=10)

    def ended():
        session = db.session.get(LiveSession, session_id)
        session.ended_at = real_end
        for order in db.session.scalars(select(Order).where(Order.session_id == session_id)):
            order.enrollment.attended = order.email == "came@example.com"
        return session_ended(session, now=real_end)

    assert shop.db(ended) == 2
    assert shop.dispatch(real_end + timedelta(minutes=29)).sent == 0
    assert shop.dispatch(real_end + timedelta(minutes=30)).sent == 2
    assert smtp.to("came@example.com")[-1].subject == "Thank you for joining Watercolour basics"
    missed = smtp.to("absent@example.com")[-1]
    assert missed.subject == "Sorry we missed you at Watercolour basics"
    assert "reply to this email" in missed.text.lower()
    assert shop.emails(absent)["missed_you"] == "sent"


def test_a_relay_that_never_answers_does_not_stall_the_dispatcher(shop_on):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        shop = shop_on(MAIL_SERVER="127.0.0.1", MAIL_PORT=silent.getsockname()[1], MAIL_SUPPRESS_SEND=False,
                       MAIL_TIMEOUT_SECONDS=1)  # fmt: skip
        shop.paid_order(shop.session(starts_at=(utcnow() + timedelta(days=2)).isoformat()), email="slow@example.com")
        result = shop.dispatch(utcnow())
    assert result.retried == 1
    status, error = shop.db(lambda: db.session.execute(
        select(OutboxMessage.status, OutboxMessage.last_error).where(OutboxMessage.kind == "confirmation")
    ).one())  # fmt: skip
    assert status == "pending" and "timed out" in error


def test_invitation_text_is_escaped_and_folded_as_rfc_5545_asks():
    from webinar_pay.services.ics import Invitation, build_ics

    title = "Watercolour, oils; and \\ brushes —" + " très long" * 12
    start = datetime(2027, 3, 28, 8, 0, tzinfo=UTC)
    ics = build_ics(
        Invitation(uid="order-7@example.com", sequence=3, starts_at=start, ends_at=start + timedelta(hours=1),
                   summary=title, description="Line one\nLine two", url="https://example.com/j/7.abc",
                   organizer_name='Ada "The" Teacher', organizer_email="ada@example.com", attendee_name="Bo",
                   attendee_email="bo@example.com", cancelled=True),
        now=start - timedelta(days=1),
    )  # fmt: skip
    lines = ics.split("\r\n")
    assert ics.endswith("\r\n") and all(len(line.encode()) <= 75 for line in lines)
    assert _field(ics, "SUMMARY") == title.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")
    assert _field(ics, "DESCRIPTION") == "Line one\\nLine two"
    assert (_field(ics, "METHOD"), _field(ics, "STATUS"), _field(ics, "SEQUENCE")) == ("CANCEL", "CANCELLED", "3")
    assert _field(ics, "DTSTART") == "20270328T080000Z" and _field(ics, "DTSTAMP") == "20270327T080000Z"
    assert _field(ics, "ORGANIZER") == "CN=\"Ada 'The' Teacher\":mailto:ada@example.com"


def test_creator_branding_reply_to_and_replay_link_reach_the_attendee(shop, smtp):
    def brand():
        from webinar_pay.models import Creator
        from webinar_pay.services.creators import update_profile

        creator = db.session.scalar(select(Creator))
        update_profile(creator, {"name": "Ada Teacher", "timezone": "Europe/Paris", "reply_to": "help@ada.example",
                                 "brand_colour": "#aa3300", "logo_url": "https://ada.example/logo.png"})  # fmt: skip

    shop.db(brand)
    starts = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    session_id = shop.session(starts_at=starts.isoformat(), reminder_offsets_minutes=[])
    status, body = shop.creator.patch(f"/api/v1/sessions/{session_id}", {"replay_url": "https://video.example/r1"})
    assert status == 200 and body["replay_url"] == "https://video.example/r1"
    shop.paid_order(session_id, email="cy@example.com")

    shop.dispatch(utcnow())
    (confirmation,) = smtp.to("cy@example.com")
    assert confirmation.message["Reply-To"] == "help@ada.example"
    assert "#aa3300" in confirmation.html and "https://ada.example/logo.png" in confirmation.html
    shop.dispatch(starts + timedelta(minutes=90 + 31))
    thank_you = smtp.to("cy@example.com")[-1]
    assert "https://video.example/r1" in thank_you.text and "https://video.example/r1" in thank_you.html
