"""The join link has its own token: it leads into the session and opens nothing else (not the ticket, which can
cancel the seat, nor the API); the ticket token no longer opens `/j/`. Any string on a token path is a 404.

Demo mode (the sandbox pay page), the emails over real SMTP, and the migration that rewrites stored YouTube links.
"""

from __future__ import annotations

import re
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask_migrate import upgrade
from sqlalchemy import text

from tests.conftest import LiveShop, _base_config, csrf_in
from webinar_pay import create_app
from webinar_pay.extensions import db
from webinar_pay.models import Order, utcnow
from webinar_pay.services.tickets import join_link, ticket_token

BASE = "http://127.0.0.1:5000"
MIGRATIONS = Path(__file__).resolve().parent.parent / "webinar_pay" / "migrations" / "versions"


@pytest.fixture
def shop(live_server, create_creator, smtp) -> LiveShop:
    """Demo mode sending to the test SMTP server: the buyer pays on the sandbox page."""
    return LiveShop(live_server(demo=True, **smtp.config), create_creator()[1], provider="sandbox")


def _link(body: str, kind: str, base: str) -> str:
    """The path of the /t/ or /j/ link a message carries."""
    return re.search(rf"{re.escape(base)}(/{kind}/[\w.-]+)", body)[1]


def _token(path: str) -> str:
    return path.rsplit("/", 1)[1]


def test_the_join_link_leads_into_the_session_and_opens_nothing_else(shop, smtp):
    session_id = shop.session(cancellation_hours=1)
    order_id = shop.paid_order(session_id)["order_id"]
    shop.dispatch()
    [confirmation] = smtp.to("bo@example.com")
    join, ticket = _link(confirmation.text, "j", shop.url), _link(confirmation.text, "t", shop.url)
    join_token, ticket_token = _token(join), _token(ticket)
    assert join_token != ticket_token and join_token.startswith(f"{order_id}.")

    browser = requests.Session()
    joined = browser.get(shop.url + join, allow_redirects=False, timeout=10)
    assert (joined.status_code, joined.headers["Location"]) == (303, "https://meet.example.com/watercolour")
    assert f'href="{join}"' in browser.get(shop.url + ticket, timeout=10).text  # the ticket page's button

    # Whoever gets the join link (a forwarded reminder, a shared calendar) cannot reach the ticket with it.
    for suffix in ("", "/status", "/cancelled", "/cancel"):
        path = f"/t/{join_token}{suffix}"
        assert browser.get(shop.url + path, timeout=10).status_code == 404, path
    csrf = csrf_in(browser.get(f"{shop.url}/s/{session_id}", timeout=10).text)
    for path in (f"/t/{join_token}/cancel", f"/t/{join_token}/release"):
        assert browser.post(shop.url + path, data={"csrf_token": csrf}, timeout=10).status_code == 404, path
    status, body = shop.buyer.get(f"/api/v1/orders/{order_id}", token=join_token)
    assert (status, body["error"]) == (401, "unauthorized")
    assert shop.buyer.get(f"/api/v1/orders/{order_id}", token=ticket_token)[0] == 200
    assert shop.order(order_id)["status"] == "paid"

    # The ticket token is not a join link (any more).
    refused = browser.get(f"{shop.url}/j/{ticket_token}", timeout=10)
    assert refused.status_code == 404 and "This join link is not valid" in refused.text

    invitation = confirmation.ics.replace("\r\n ", "")
    assert f"URL:{shop.url}{join}" in invitation and ticket_token not in invitation


def test_after_a_cancellation_neither_the_join_page_nor_the_invitation_carries_the_ticket(shop, smtp):
    session_id = shop.session(cancellation_hours=1)
    order_id = shop.paid_order(session_id)["order_id"]
    shop.dispatch()
    [confirmation] = smtp.to("bo@example.com")
    join, ticket = _link(confirmation.text, "j", shop.url), _link(confirmation.text, "t", shop.url)

    browser = requests.Session()
    csrf = csrf_in(browser.get(f"{shop.url}{ticket}/cancel", timeout=10).text)  # the question the button leads to
    cancelled = browser.post(f"{shop.url}{ticket}/cancel", data={"csrf_token": csrf, "confirm": "yes"},
                             allow_redirects=False, timeout=10)  # fmt: skip
    assert cancelled.status_code == 303 and shop.order(order_id)["status"] == "refunded"
    page = browser.get(shop.url + join, timeout=10)
    assert page.status_code == 403 and "/t/" not in page.text

    shop.dispatch()
    notice = next(mail for mail in smtp.to("bo@example.com") if mail is not confirmation)
    invitation = notice.ics.replace("\r\n ", "")
    assert "METHOD:CANCEL" in invitation and _token(ticket) not in invitation
    assert f"URL:{shop.url}{join}" in invitation


def test_a_youtube_enrolment_stores_the_join_link(shop):
    stream = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    session_id = shop.session(platform="youtube", youtube_url=stream, join_link=None)
    checkout = shop.paid_order(session_id)
    stored = shop.order(checkout["order_id"])["enrollment"]["join_url"]
    assert stored.startswith(f"{shop.url}/j/") and _token(stored) != checkout["access_token"]
    early = requests.get(stored, allow_redirects=False, timeout=10)
    assert early.status_code == 403 and "The live stream opens at" in early.text


ODD_TOKENS = ["%C2%B2.x", "%C2%B2%C2%B2.abc", "1.", ".abc", "0.abc", "99999999999999999999.abc", "1.%00", "x" * 300]


@pytest.mark.parametrize("token", ODD_TOKENS)
def test_any_token_path_is_a_clean_404(client, token):
    for path in (f"/t/{token}", f"/j/{token}", f"/t/{token}/status", f"/t/{token}/cancelled"):
        assert client.get(path).status_code == 404, path
    response = client.get("/api/v1/orders/1", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_the_migration_gives_stored_youtube_join_links_the_join_token():
    """Join links stored before the join token carry the ticket token, which no longer opens /j/: rewritten."""
    revision = re.search(r'^down_revision = "(\w+)"', (MIGRATIONS / "0008_hold_limits.py").read_text(), re.M)[1]
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='webinar_pay_migration_')) / 'old.sqlite3'}"
    app = create_app(_base_config(url))
    now, later = utcnow().replace(tzinfo=None), (utcnow() + timedelta(days=3)).replace(tzinfo=None)
    with app.app_context():
        upgrade(revision=revision)
        rows = {"now": now, "later": later, "nonce": "a" * 32}
        db.session.execute(text(
            "INSERT INTO creators (id, email, name, password_hash, role, timezone, created_at) "
            "VALUES (1, 'ada@example.com', 'Ada', 'x', 'creator', 'UTC', :now)"
        ), rows)  # fmt: skip
        for session_id, platform in ((1, "youtube"), (2, "link")):
            db.session.execute(text(
                "INSERT INTO live_sessions (id, creator_id, title, description, starts_at, timezone, duration_minutes, "
                "price, currency, capacity, seats_taken, status, platform, reminder_offsets, created_at, updated_at) "
                f"VALUES ({session_id}, 1, 'Stream', '', :later, 'UTC', 60, 2500, 'EUR', 10, 1, 'published', "
                f"'{platform}', '[60]', :now, :now)"
            ), rows)  # fmt: skip
            db.session.execute(text(
                "INSERT INTO orders (id, session_id, name, email, amount, currency, provider, status, holds_seat, "
                f"token_nonce, created_at, updated_at) VALUES ({session_id}, {session_id}, 'Bo', 'bo@example.com', "
                "2500, 'EUR', 'sandbox', 'paid', 1, :nonce, :now, :now)"
            ), rows)  # fmt: skip
        order = Order(id=1, token_nonce=rows["nonce"])  # as the rows above: the tokens need nothing else
        with app.test_request_context():
            old = f"{BASE}/j/{ticket_token(order)}"
        for order_id, join_url in ((1, old), (2, "https://meet.example.com/room")):
            db.session.execute(text(
                "INSERT INTO enrollments (order_id, status, join_url, attempts, created_at, updated_at) "
                "VALUES (:order_id, 'enrolled', :url, 0, :now, :now)"
            ), {**rows, "order_id": order_id, "url": join_url})  # fmt: skip
        db.session.commit()

        upgrade(revision="0008_hold_limits")
        stored = dict(db.session.execute(text("SELECT order_id, join_url FROM enrollments")).all())
        with app.test_request_context():
            assert stored == {1: join_link(order), 2: "https://meet.example.com/room"}
        upgrade()  # the app's models read the columns of later revisions
        assert app.test_client().get(stored[1].removeprefix(BASE)).status_code == 403  # a join link: stream not open
        db.engine.dispose()
