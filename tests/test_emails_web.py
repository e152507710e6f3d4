"""Emails as people see them in the app: the dev mailbox of demo mode, the creator's delivery log, resend, preview."""

from __future__ import annotations

import re
from datetime import timedelta

import requests

from tests.conftest import PASSWORD, csrf_in
from tests.test_emails import Shop
from webinar_pay.models import utcnow
from webinar_pay.scheduler import tick


def test_demo_mode_keeps_emails_in_the_dev_mailbox(live_server, create_creator):
    shop = Shop(live_server(demo=True), create_creator()[1], provider="sandbox")
    assert shop.app.config["MAIL_SUPPRESS_SEND"] and "sandbox" in shop.app.extensions["webinar_pay.providers"]
    session_id = shop.session(starts_at=(utcnow() + timedelta(minutes=20)).isoformat(), reminder_offsets_minutes=[10])
    shop.paid_order(session_id, email="demo@example.com", name="Dee Demo")
    with shop.app.app_context():
        assert tick()["send_emails"] == 1

    page = requests.get(f"{shop.url}/dev/mailbox/", timeout=10).text
    assert "demo@example.com" in page and "You are in: Watercolour basics" in page
    message_path = re.search(r'href="(/dev/mailbox/\d+)"', page).group(1)
    message = requests.get(shop.url + message_path, timeout=10)
    assert "Dee Demo" in message.text and "/j/" in message.text
    assert "frame-src 'self'" in message.headers["Content-Security-Policy"]
    html = requests.get(shop.url + message_path + "/body.html", timeout=10)
    assert html.status_code == 200 and "Dee Demo" in html.text
    assert html.headers["Content-Security-Policy"].startswith("default-src 'none'")
    ics = requests.get(shop.url + message_path + "/invite.ics", timeout=10)
    assert ics.headers["Content-Type"].split(";")[0] == "text/calendar" and "METHOD:REQUEST" in ics.text
    assert requests.get(f"{shop.url}/dev/mailbox/999999", timeout=10).status_code == 404

    starts = shop.starts_at(session_id)
    assert shop.dispatch(starts - timedelta(minutes=10)).sent == 1
    assert shop.dispatch(starts + timedelta(minutes=90 + 30)).sent == 1
    page = requests.get(f"{shop.url}/dev/mailbox/", timeout=10).text
    subjects = re.findall(r'href="/dev/mailbox/\d+">([^<]+)</a>', page)
    assert subjects == [
        "Thank you for joining Watercolour basics",
        "Reminder: Watercolour basics starts in 10 minutes",
        "You are in: Watercolour basics",
    ]


def test_the_dev_mailbox_does_not_exist_with_a_mail_server(make_app):
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=2525)
    assert app.test_client().get("/dev/mailbox/").status_code == 404


def test_creator_sees_the_delivery_log_resends_and_previews(live_server, create_creator, fake_stripe, smtp):
    shop = Shop(live_server(**smtp.config), create_creator()[1], stripe=fake_stripe)
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=3)).isoformat())
    order_id = shop.paid_order(session_id, email="log@example.com", name="Lou Log")["order_id"]
    shop.dispatch()
    assert len(smtp.to("log@example.com")) == 1

    emails = f"{shop.url}/dashboard/sessions/{session_id}/emails/"
    assert requests.get(emails, allow_redirects=False, timeout=10).status_code == 302  # log in first
    browser = shop.dashboard()
    detail = browser.get(f"{shop.url}/dashboard/sessions/{session_id}", timeout=10).text
    assert f"/dashboard/sessions/{session_id}/emails/" in detail
    page = browser.get(emails, timeout=10).text
    assert "Lou Log" in page and "Confirmation" in page and "sent" in page
    assert "Reminder, 1440 min before" in page and "pending" in page

    resend = browser.post(f"{emails}orders/{order_id}/resend", data={"csrf_token": csrf_in(page)},
                          allow_redirects=False, timeout=10)  # fmt: skip
    assert resend.status_code == 302
    shop.dispatch()
    assert [m.subject for m in smtp.to("log@example.com")] == ["You are in: Watercolour basics"] * 2

    preview = browser.get(f"{emails}preview/reminder", timeout=10)
    assert preview.status_code == 200 and "Reminder: Watercolour basics starts tomorrow at this time" in preview.text
    assert "Alex Example" in preview.text
    html = browser.get(f"{emails}preview/thank_you?part=html", timeout=10)
    assert "Thank you for joining Watercolour basics" in html.text
    assert browser.get(f"{emails}preview/nonsense", timeout=10).status_code == 404
    assert len(smtp.to("alex@example.com")) == 0  # previews are never sent


def test_another_creator_cannot_see_or_resend(live_server, create_creator, fake_stripe, smtp):
    shop = Shop(live_server(**smtp.config), create_creator()[1], stripe=fake_stripe)
    session_id = shop.session(starts_at=(utcnow() + timedelta(days=3)).isoformat())
    order_id = shop.paid_order(session_id)["order_id"]
    shop.dispatch()
    create_creator(email="other@example.com")
    browser = shop.dashboard("other@example.com")
    emails = f"{shop.url}/dashboard/sessions/{session_id}/emails/"
    assert browser.get(emails, timeout=10).status_code == 404
    assert browser.get(f"{emails}preview/confirmation", timeout=10).status_code == 404
    token = csrf_in(browser.get(f"{shop.url}/dashboard/", timeout=10).text)
    resend = browser.post(f"{emails}orders/{order_id}/resend", data={"csrf_token": token}, allow_redirects=False,
                          timeout=10)  # fmt: skip
    assert resend.status_code == 404
    shop.dispatch()
    assert len(smtp.to("bo@example.com")) == 1  # the confirmation only


def test_without_demo_mode_the_mailbox_needs_a_log_in_and_shows_own_attendees_only(app, create_creator):
    assert "sandbox" not in app.extensions["webinar_pay.providers"] and not app.config["MAIL_SERVER"]
    create_creator()
    client = app.test_client()
    assert client.get("/dev/mailbox/").status_code == 302
    page = client.get("/login").get_data(as_text=True)
    form = {"csrf_token": csrf_in(page), "email": "creator@example.com", "password": PASSWORD}
    assert client.post("/login", data=form).status_code == 302
    assert client.get("/dev/mailbox/").status_code == 200
