"""What the delivery log and the dev mailbox show of a sent email is what went out, kept when it was sent: a later
change to the session does not rewrite it."""

from __future__ import annotations

import html
import re

import pytest
import requests
from sqlalchemy import select, update

from tests.conftest import Api, LiveShop, session_payload
from tests.fakes.smtp_server import SmtpServer
from webinar_pay.extensions import db, mail
from webinar_pay.models import OutboxMessage, utcnow
from webinar_pay.services.outbox.dispatch import dispatch_due

PASSWORD = "correct horse battery"
SENT = re.compile(r'href="(/dashboard/sessions/\d+/emails/messages/\d+)">([^<]+)</a>')
MAILBOX = re.compile(r'href="(/dev/mailbox/\d+)">([^<]+)</a>')


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def _text_part(page: str) -> str:
    """The plain-text body as a page shows it."""
    return html.unescape(re.search(r'<pre class="email-text">(.*?)</pre>', page, re.S)[1])


def _lines(text: str) -> list[str]:
    return text.strip().splitlines()


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def test_the_delivery_log_shows_the_email_that_went_over_smtp_even_after_the_title_changed(
    live_server, create_creator, fake_stripe, smtp
):
    shop = LiveShop(live_server(**smtp.config), create_creator()[1])
    session_id = shop.session()
    status, checkout = shop.checkout(session_id, email="ann@example.com", name="Ann Attendee")
    assert status == 201, checkout
    assert shop.webhook(fake_stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1])) == "paid"
    assert shop.db(lambda: dispatch_due(now=utcnow())).sent == 1
    [sent] = smtp.to("ann@example.com")
    assert sent.subject == "You are in: Watercolour basics"
    assert shop.creator.patch(f"/api/v1/sessions/{session_id}", {"title": "Oil painting"})[0] == 200

    browser = requests.Session()
    page = browser.get(f"{shop.url}/login", timeout=10).text
    data = {"csrf_token": _csrf(page), "email": "creator@example.com", "password": PASSWORD}
    assert browser.post(f"{shop.url}/login", data=data, timeout=10).status_code == 200
    log = browser.get(f"{shop.url}/dashboard/sessions/{session_id}/emails/", timeout=10).text
    [(path, subject)] = SENT.findall(log)
    assert html.unescape(subject) == sent.subject

    page = browser.get(shop.url + path, timeout=10)
    assert page.status_code == 200 and f"<h1>{sent.subject}</h1>" in page.text
    assert _lines(_text_part(page.text)) == _lines(sent.text) and "Ann Attendee" in sent.text
    body = browser.get(f"{shop.url}{path}/body.html", timeout=10)
    assert _lines(body.text) == _lines(sent.html) and body.headers["Content-Security-Policy"].startswith("default-src")
    assert _lines(browser.get(f"{shop.url}{path}/invite.ics", timeout=10).text) == _lines(sent.ics)
    preview = browser.get(f"{shop.url}/dashboard/sessions/{session_id}/emails/preview/confirmation", timeout=10)
    assert "You are in: Oil painting" in preview.text  # a preview is today's; the copy is what was sent


def test_another_creator_cannot_read_a_sent_email(live_server, create_creator, fake_stripe, smtp):
    shop = LiveShop(live_server(**smtp.config), create_creator()[1])
    session_id = shop.session()
    status, checkout = shop.checkout(session_id)
    assert status == 201, checkout
    assert shop.webhook(fake_stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1])) == "paid"
    assert shop.db(lambda: dispatch_due(now=utcnow())).sent == 1
    message_id = shop.db(lambda: db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.status == "sent")))
    create_creator(email="other@example.com")
    browser = requests.Session()
    page = browser.get(f"{shop.url}/login", timeout=10).text
    data = {"csrf_token": _csrf(page), "email": "other@example.com", "password": PASSWORD}
    assert browser.post(f"{shop.url}/login", data=data, timeout=10).status_code == 200
    path = f"{shop.url}/dashboard/sessions/{session_id}/emails/messages/{message_id}"
    assert browser.get(path, timeout=10).status_code == 404
    assert browser.get(path + "/body.html", timeout=10).status_code == 404


class DemoShop:
    """The demo-mode app through its test client: buy with the test payment page, read the dev mailbox."""

    def __init__(self, app, token: str):
        self.app = app
        self.client = app.test_client()
        self.creator = Api(self.client, token)

    def session(self, **overrides) -> int:
        status, body = self.creator.post("/api/v1/sessions", session_payload(**overrides))
        assert status == 201, body
        assert self.creator.post(f"/api/v1/sessions/{body['id']}/publish")[0] == 200
        return body["id"]

    def buy(self, session_id: int, email: str, name: str) -> None:
        status, body = Api(self.client).post(
            f"/api/v1/sessions/{session_id}/checkout", {"name": name, "email": email, "provider": "sandbox"}
        )
        assert status == 201, body
        pay_page = body["checkout_url"].removeprefix(self.app.config["BASE_URL"])
        csrf = _csrf(self.client.get(pay_page).get_data(as_text=True))
        assert self.client.post(pay_page, data={"csrf_token": csrf, "action": "pay"}).status_code == 303

    def page(self, path: str):
        response = self.client.get(path)
        return response.status_code, response.get_data(as_text=True)


def test_the_dev_mailbox_shows_the_email_as_it_was_sent_even_after_the_title_changed(demo_app, create_creator):
    shop = DemoShop(demo_app, create_creator()[1])
    session_id = shop.session()
    shop.buy(session_id, email="dee@example.com", name="Dee Demo")
    with mail.record_messages() as outgoing, demo_app.app_context():  # what was handed to the (suppressed) server
        assert dispatch_due(now=utcnow()).sent == 1
    [sent] = outgoing
    assert shop.creator.patch(f"/api/v1/sessions/{session_id}", {"title": "Oil painting"})[0] == 200

    status, index = shop.page("/dev/mailbox/")
    [(path, subject)] = MAILBOX.findall(index)
    assert status == 200 and html.unescape(subject) == sent.subject == "You are in: Watercolour basics"
    assert "dee@example.com" in index
    status, page = shop.page(path)
    assert status == 200 and f"<h1>{sent.subject}</h1>" in page and "Oil painting" not in page
    assert _lines(_text_part(page)) == _lines(sent.body)
    assert shop.page(path + "/body.html")[1] == sent.html
    [invite] = sent.attachments
    assert shop.page(path + "/invite.ics")[1] == invite.data.decode()


def test_an_email_sent_before_copies_were_kept_says_so_and_is_not_rendered_anew(demo_app, create_creator):
    shop = DemoShop(demo_app, create_creator()[1])
    session_id = shop.session()
    shop.buy(session_id, email="old@example.com", name="Olde Attendee")
    with demo_app.app_context():
        assert dispatch_due(now=utcnow()).sent == 1
        # What the upgrade to 0010_outbox_rendered leaves on messages sent before it: no copy.
        copy = ("sent_to", "sent_reply_to", "sent_subject", "sent_text", "sent_html", "sent_ics")
        db.session.execute(update(OutboxMessage).values(dict.fromkeys(copy)))
        db.session.commit()

    status, index = shop.page("/dev/mailbox/")
    [(path, subject)] = MAILBOX.findall(index)
    assert status == 200 and subject == "Sent before copies were kept" and "old@example.com" in index
    status, page = shop.page(path)
    assert status == 200 and "cannot be shown" in page and "Olde Attendee" not in page
    assert shop.page(path + "/body.html")[0] == 404
    assert shop.page(path + "/invite.ics")[0] == 404

    data = {"csrf_token": _csrf(shop.page("/login")[1]), "email": "creator@example.com", "password": PASSWORD}
    assert shop.client.post("/login", data=data).status_code == 302
    status, log = shop.page(f"/dashboard/sessions/{session_id}/emails/")
    [(sent_path, label)] = SENT.findall(log)
    assert status == 200 and label == "sent before copies were kept"
    assert shop.page(sent_path)[0] == 200 and shop.page(sent_path + "/body.html")[0] == 404
