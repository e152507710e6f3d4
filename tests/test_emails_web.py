"""Emails as people see them in the app: the dev mailbox of demo mode, the creator's delivery log, resend, preview."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from tests.fakes.smtp_server import SmtpServer
from tests.test_emails import Shop
from webinar_pay.extensions import db
from webinar_pay.models import Order, utcnow
from webinar_pay.scheduler import tick


def _csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def _log_in(client) -> None:
    response = client.post("/login", data={"csrf_token": _csrf(client, "/login"), "email": "creator@example.com",
                                           "password": "correct horse battery"})  # fmt: skip
    assert response.status_code == 302


def test_demo_mode_keeps_emails_in_the_dev_mailbox(demo_app, create_creator):
    shop = Shop(demo_app, create_creator()[1])
    assert demo_app.config["MAIL_SUPPRESS_SEND"] and "sandbox" in demo_app.extensions["webinar_pay.providers"]
    session_id = shop.session(starts_at=(utcnow() + timedelta(minutes=20)).isoformat(), reminder_offsets_minutes=[10])
    shop.buy(session_id, email="demo@example.com", name="Dee Demo")
    with demo_app.app_context():
        assert tick()["send_emails"] == 1

    page = shop.client.get("/dev/mailbox/").get_data(as_text=True)
    assert "demo@example.com" in page and "You are in: Watercolour basics" in page
    message_path = re.search(r'href="(/dev/mailbox/\d+)"', page).group(1)
    message = shop.client.get(message_path)
    text = message.get_data(as_text=True)
    assert "Dee Demo" in text and "/j/" in text
    assert "frame-src 'self'" in message.headers["Content-Security-Policy"]
    html = shop.client.get(message_path + "/body.html")
    assert html.status_code == 200 and "Dee Demo" in html.get_data(as_text=True)
    assert html.headers["Content-Security-Policy"].startswith("default-src 'none'")
    ics = shop.client.get(message_path + "/invite.ics")
    assert ics.mimetype == "text/calendar" and "METHOD:REQUEST" in ics.get_data(as_text=True)
    assert shop.client.get("/dev/mailbox/999999").status_code == 404

    starts = shop.starts_at(session_id)
    assert shop.dispatch(starts - timedelta(minutes=10)).sent == 1
    assert shop.dispatch(starts + timedelta(minutes=90 + 30)).sent == 1
    page = shop.client.get("/dev/mailbox/").get_data(as_text=True)
    subjects = re.findall(r'href="/dev/mailbox/\d+">([^<]+)</a>', page)
    assert subjects == [
        "Thank you for joining Watercolour basics",
        "Reminder: Watercolour basics starts in 10 minutes",
        "You are in: Watercolour basics",
    ]


def test_the_dev_mailbox_does_not_exist_with_a_mail_server(make_app):
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=2525)
    assert app.test_client().get("/dev/mailbox/").status_code == 404


def test_creator_sees_the_delivery_log_resends_and_previews(make_app, create_creator):
    with SmtpServer() as smtp:
        app = make_app(**smtp.config)
        shop = Shop(app, create_creator()[1])
        session_id = shop.session(starts_at=(utcnow() + timedelta(days=3)).isoformat())
        shop.buy(session_id, email="log@example.com", name="Lou Log")
        shop.dispatch(utcnow())
        assert len(smtp.to("log@example.com")) == 1

        client = app.test_client()
        assert client.get(f"/dashboard/sessions/{session_id}/emails/").status_code == 302  # log in first
        _log_in(client)
        detail = client.get(f"/dashboard/sessions/{session_id}").get_data(as_text=True)
        assert f"/dashboard/sessions/{session_id}/emails/" in detail
        page = client.get(f"/dashboard/sessions/{session_id}/emails/").get_data(as_text=True)
        assert "Lou Log" in page and "Confirmation" in page and "sent" in page
        assert "Reminder, 1440 min before" in page and "pending" in page

        order_id = shop.db(lambda: db.session.scalar(select(Order.id).where(Order.email == "log@example.com")))
        path = f"/dashboard/sessions/{session_id}/emails/orders/{order_id}/resend"
        response = client.post(path, data={"csrf_token": _csrf(client, f"/dashboard/sessions/{session_id}/emails/")})
        assert response.status_code == 302
        shop.dispatch(utcnow())
        assert [m.subject for m in smtp.to("log@example.com")] == ["You are in: Watercolour basics"] * 2

        preview = client.get(f"/dashboard/sessions/{session_id}/emails/preview/reminder")
        body = preview.get_data(as_text=True)
        assert preview.status_code == 200 and "Reminder: Watercolour basics starts tomorrow at this time" in body
        assert "Alex Example" in body
        html = client.get(f"/dashboard/sessions/{session_id}/emails/preview/thank_you?part=html")
        assert "Thank you for joining Watercolour basics" in html.get_data(as_text=True)
        assert client.get(f"/dashboard/sessions/{session_id}/emails/preview/nonsense").status_code == 404
        assert len(smtp.to("alex@example.com")) == 0  # previews are never sent


def test_another_creator_cannot_see_or_resend(make_app, create_creator):
    app = make_app()
    shop = Shop(app, create_creator()[1])
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=3)).isoformat())
    create_creator(email="other@example.com")
    client = app.test_client()
    response = client.post("/login", data={"csrf_token": _csrf(client, "/login"), "email": "other@example.com",
                                           "password": "correct horse battery"})  # fmt: skip
    assert response.status_code == 302
    assert client.get(f"/dashboard/sessions/{session_id}/emails/").status_code == 404
    assert client.get(f"/dashboard/sessions/{session_id}/emails/preview/confirmation").status_code == 404


def test_without_demo_mode_the_mailbox_needs_a_log_in_and_shows_own_attendees_only(app, create_creator):
    assert "sandbox" not in app.extensions["webinar_pay.providers"] and not app.config["MAIL_SERVER"]
    create_creator()
    client = app.test_client()
    assert client.get("/dev/mailbox/").status_code == 302
    _log_in(client)
    assert client.get("/dev/mailbox/").status_code == 200
