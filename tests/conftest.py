"""Shared fixtures: one app per test against SQLite and, when TEST_DATABASE_URL is set, PostgreSQL too.

Outside services are local fakes on 127.0.0.1; an autouse guard refuses any other address.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from tests.fakes.fake_paypal import FakePayPal
from tests.fakes.fake_stripe import FakeStripe
from tests.fakes.fake_zoom import FakeZoom
from tests.fakes.local_server import POLL_SECONDS
from tests.fakes.smtp_server import SmtpServer
from webinar_pay import create_app
from webinar_pay.extensions import db
from webinar_pay.models import OutboxMessage, utcnow
from webinar_pay.services.inbox import apply_webhooks
from webinar_pay.services.outbox.dispatch import DispatchResult, dispatch_due

PASSWORD = "correct horse battery"  # every test creator's
STRIPE_KEY = "sk_test_webinarpay"
STRIPE_WEBHOOK_SECRET = "whsec_webinarpay_test"

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
# The command line speaks the operator's language (LC_ALL, LANG); the tests read it in English whatever the machine's.
os.environ["LC_ALL"] = "C.UTF-8"


def pytest_configure(config) -> None:
    """Compile the translation catalogues that changed since their .mo, as `make test` does, for a bare `pytest`.

    Every xdist worker may do it at once: each writes a file of its own and moves it into place.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    from webinar_pay import stale_catalogues

    for source in stale_catalogues():
        with source.open("rb") as po:
            catalogue = read_po(po)
        with tempfile.NamedTemporaryFile("wb", dir=source.parent, suffix=".mo.tmp", delete=False) as mo:
            write_mo(mo, catalogue)
        os.replace(mo.name, source.with_suffix(".mo"))


# -- outside world --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch):
    """Fail any test that opens a connection to anything but this machine."""
    real_connect = socket.socket.connect

    def guarded_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise AssertionError(f"test tried to reach {address}: only 127.0.0.1 is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Fail a test that starts a process (the CLI, gunicorn, nginx, a worker, a browser) without the `slow` marker.

    `make test-fast` leaves the slow tests out; this keeps the marker true to what the tests do. It covers the
    test's fixtures of every scope, which are set up within their first test's run.
    """
    if item.get_closest_marker("slow"):
        return (yield)

    def refused(args, *_rest, **_options):
        raise AssertionError(f"{item.nodeid} starts a process ({args!r}): mark it @pytest.mark.slow")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", refused)
        return (yield)


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[FakeStripe]:
    with FakeStripe(api_key=STRIPE_KEY, webhook_secret=STRIPE_WEBHOOK_SECRET) as fake:
        yield fake


@pytest.fixture(scope="session")
def paypal_server() -> Iterator[FakePayPal]:
    with FakePayPal() as fake:
        yield fake


@pytest.fixture
def fake_stripe(stripe_server) -> Iterator[FakeStripe]:
    """The fake Stripe, started once per test process and emptied for each test.

    Order ids start at 1 in every test (and again on each database), so ids and idempotency keys a test sends
    would otherwise meet the previous tests' ones.
    """
    stripe_server.reset()
    yield stripe_server
    stripe_server.reset()  # answers requests still held by a latency or a hang


@pytest.fixture
def fake_paypal(paypal_server) -> Iterator[FakePayPal]:
    """The fake PayPal, started once per test process and emptied for each test (see `fake_stripe`)."""
    paypal_server.reset()
    yield paypal_server
    paypal_server.reset()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 for this test; `**smtp.config` points an app at it."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def fake_zoom() -> Iterator[FakeZoom]:
    """A fresh fake Zoom per test (meetings and registrants are per test)."""
    with FakeZoom() as fake:
        yield fake


# -- databases -------------------------------------------------------------------------------------------------


def _worker_suffix() -> str:
    """Unique per test process, so that two runs at once on one server never share a database."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:8]
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{run}"


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request) -> Iterator[str]:
    """A migrated, empty database for this test worker, built with the real migrations."""
    if request.param == "sqlite":
        folder = tempfile.mkdtemp(prefix="webinar_pay_test_")
        url = f"sqlite:///{Path(folder) / 'test.sqlite3'}"
        _migrate(url)
        yield url
        return
    base = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    name = f"{base.database}_wp_{_worker_suffix()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    _migrate(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _migrate(url: str) -> None:
    app = create_app(_base_config(url))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _base_config(url: str) -> dict:
    return {
        "TESTING": True,
        "ENV_NAME": "test",
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": url,
        "BASE_URL": "http://127.0.0.1:5000",
        "STRIPE_SECRET_KEY": "",
        "STRIPE_WEBHOOK_SECRET": "",
        "PAYPAL_CLIENT_ID": "",
        "MAIL_SERVER": "",
        "SCHEDULER_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "STRIPE_MAX_NETWORK_RETRIES": 0,
    }


def _empty_tables(app: Flask) -> None:
    with app.app_context():
        tables = [table.name for table in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as connection:
            if db.engine.dialect.name == "postgresql":
                connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    connection.execute(text(f"DELETE FROM {table}"))


# -- the app ---------------------------------------------------------------------------------------------------


@pytest.fixture
def make_app(database_url) -> Iterator[Callable[..., Flask]]:
    """Build an app on the test database; keyword arguments override configuration."""
    apps: list[Flask] = []

    def factory(**overrides) -> Flask:
        app = create_app({**_base_config(database_url), **overrides})
        apps.append(app)
        return app

    yield factory
    if apps:
        _empty_tables(apps[0])
    for app in apps:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def stripe_config(fake_stripe) -> dict:
    return {
        "STRIPE_SECRET_KEY": fake_stripe.api_key,
        "STRIPE_WEBHOOK_SECRET": fake_stripe.webhook_secret,
        "STRIPE_API_BASE": fake_stripe.base_url,
    }


@pytest.fixture
def paypal_config(fake_paypal) -> dict:
    """PayPal through the fake; its webhook certificate is served from 127.0.0.1, trusted here."""
    return {
        "PAYPAL_CLIENT_ID": fake_paypal.client_id,
        "PAYPAL_CLIENT_SECRET": fake_paypal.client_secret,
        "PAYPAL_WEBHOOK_ID": fake_paypal.webhook_id,
        "PAYPAL_API_BASE": fake_paypal.base_url,
        "PAYPAL_WEBHOOK_VERIFY": "offline",
        "PAYPAL_CERT_HOSTS": "127.0.0.1",
    }


@pytest.fixture
def app(make_app, stripe_config) -> Flask:
    """The app with card payments through the fake Stripe."""
    return make_app(**stripe_config)


@pytest.fixture
def demo_app(make_app) -> Flask:
    """The app with no payment keys: demo mode with the sandbox provider."""
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def _read_whole(app: Flask):
    """`app` with each response read whole and closed before it is sent. Werkzeug's development server does not
    close a response whose client went away (a browser leaving a page while app.js loads), which leaves the static
    file open for the garbage collector to report in whatever test runs next."""

    def wsgi(environ, start_response):
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return wsgi


class LiveServer:
    def __init__(self, app: Flask, port: int):
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self._server = make_server("127.0.0.1", port, _read_whole(app), threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_SECONDS,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_server(make_app, stripe_config) -> Iterator[Callable[..., LiveServer]]:
    """Start the app on a real port: `live_server()` for card payments, `live_server(demo=True)` for demo mode."""
    servers: list[LiveServer] = []

    def start(demo: bool = False, **overrides) -> LiveServer:
        port = free_port()
        config = {} if demo else dict(stripe_config)
        app = make_app(BASE_URL=f"http://127.0.0.1:{port}", **config, **overrides)
        server = LiveServer(app, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- domain helpers --------------------------------------------------------------------------------------------


@pytest.fixture
def create_creator(app) -> Callable:
    from webinar_pay.services.creators import create_api_token
    from webinar_pay.services.creators import create_creator as create

    def factory(email: str = "creator@example.com", name: str = "Ada Teacher", tz: str = "Europe/Paris"):
        with app.app_context():
            creator = create(email, name, PASSWORD, tz, verified=True)
            return creator.id, create_api_token(creator)

    return factory


def session_payload(**overrides) -> dict:
    starts = (utcnow() + timedelta(days=7)).replace(microsecond=0)
    payload = {
        "title": "Watercolour basics",
        "description": "Two hours of brushes.",
        "starts_at": starts.isoformat(),
        "timezone": "Europe/Paris",
        "duration_minutes": 90,
        "price": 2500,
        "currency": "EUR",
        "capacity": 10,
        "platform": "link",
        "join_link": "https://meet.example.com/watercolour",
    }
    payload.update(overrides)
    return payload


class Api:
    """A small JSON client with a bearer token, over the Flask test client or real HTTP."""

    def __init__(self, target, token: str | None = None):
        self.target = target
        self.token = token

    def _headers(self, token: str | None) -> dict:
        token = token or self.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, json=None, token: str | None = None):
        if isinstance(self.target, str):
            response = requests.request(method, self.target + path, json=json, headers=self._headers(token), timeout=30)
            return response.status_code, response.json()
        response = self.target.open(path, method=method, json=json, headers=self._headers(token))
        return response.status_code, response.get_json()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)


def csrf_in(page: str) -> str:
    """The CSRF token of the first form on an HTML page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no form on the page"
    return found[1]


def stripe_session_id(checkout: dict) -> str:
    """The Stripe Checkout Session that a checkout answer sends the buyer to."""
    return checkout["checkout_url"].rsplit("/", 1)[1]


def paypal_order_id(checkout: dict) -> str:
    """The PayPal order that a checkout answer sends the buyer to approve."""
    return parse_qs(urlsplit(checkout["checkout_url"]).query)["token"][0]


def join_url(app: Flask, order_id: int) -> str:
    """The order's personal join link, as the emails and the ticket page give it (its own token, not the ticket's)."""
    from webinar_pay.models import Order
    from webinar_pay.services.tickets import join_link

    with app.test_request_context("/", base_url=app.config["BASE_URL"]):
        return join_link(db.session.get(Order, order_id))


def all_at_once(*calls: Callable[[], object]) -> list:
    """Run each call in a thread of its own, all released together; returns their results in the order they ended."""
    barrier = threading.Barrier(len(calls))
    results: list = []

    def runner(call: Callable[[], object]) -> None:
        barrier.wait()
        results.append(call())

    threads = [threading.Thread(target=runner, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == len(calls), "a runner failed or hung"
    return results


def at_once(app: Flask, job: Callable[[], object], runners: int = 2) -> list:
    """Run `job` in `runners` threads started together, each in its own app context; returns their results."""

    def in_context() -> object:
        with app.app_context():
            try:
                return job()
            finally:
                db.session.remove()

    return all_at_once(*[in_context] * runners)


class LiveShop:
    """A running app (a `LiveServer`) with one creator, and the steps tests take through it over HTTP.

    Test modules subclass it for their own steps; `provider` is the buyer's payment method ("stripe", "paypal", or
    "sandbox" in demo mode); `stripe` and `paypal` are the fakes that `paid_order` pays through.
    """

    def __init__(self, server: LiveServer, token: str, provider: str = "stripe", *,
                 stripe: FakeStripe | None = None, paypal: FakePayPal | None = None):  # fmt: skip
        self.url = server.url
        self.app = server.app
        self.creator = Api(server.url, token)
        self.buyer = Api(server.url)
        self.provider = provider
        self.stripe = stripe
        self.paypal = paypal

    def session(self, **overrides) -> int:
        """Create and publish a session; returns its id."""
        status, body = self.creator.post("/api/v1/sessions", session_payload(**overrides))
        assert status == 201, body
        status, body = self.creator.post(f"/api/v1/sessions/{body['id']}/publish")
        assert status == 200, body
        return body["id"]

    def checkout(self, session_id: int, email: str = "bo@example.com", name: str = "Bo Buyer") -> tuple[int, dict]:
        return self.buyer.post(
            f"/api/v1/sessions/{session_id}/checkout", {"name": name, "email": email, "provider": self.provider}
        )

    def paid_order(self, session_id: int, email: str = "bo@example.com", name: str = "Bo Buyer") -> dict:
        """Check out and pay as the buyer does; returns the checkout answer, the order now paid.

        Stripe: its signed webhook, applied by the inbox. PayPal: the buyer approves and comes back to the ticket,
        which captures. The sandbox of demo mode: its pay page.
        """
        status, checkout = self.checkout(session_id, email, name)
        assert status == 201, checkout
        if checkout["status"] != "paid":  # a free session needs no payment
            if self.provider == "stripe":
                assert self.webhook(self.stripe.complete_session(stripe_session_id(checkout))) == "paid"
            elif self.provider == "paypal":
                requests.get(self.paypal.approve(paypal_order_id(checkout))[0], timeout=10)
            else:
                browser = requests.Session()
                page = browser.get(checkout["checkout_url"], timeout=10).text
                paid = browser.post(checkout["checkout_url"], data={"csrf_token": csrf_in(page), "action": "pay"},
                                    allow_redirects=False, timeout=10)  # fmt: skip
                assert paid.status_code == 303, paid.text
        assert self.order(checkout["order_id"])["status"] == "paid"
        return checkout

    def refund(self, order_id: int, body=None, key: str | None = None) -> tuple[int, dict]:
        """The creator's refund through the API (`key`: its Idempotency-Key)."""
        headers = {"Authorization": f"Bearer {self.creator.token}"}
        if key:
            headers["Idempotency-Key"] = key
        response = requests.post(f"{self.url}/api/v1/orders/{order_id}/refund", json=body, headers=headers, timeout=30)
        return response.status_code, response.json()

    def order(self, order_id: int) -> dict:
        status, body = self.creator.get(f"/api/v1/orders/{order_id}")
        assert status == 200, body
        return body

    def join_url(self, order_id: int) -> str:
        return join_url(self.app, order_id)

    def seats_taken(self, session_id: int) -> int:
        return self.creator.get(f"/api/v1/sessions/{session_id}")[1]["seats_taken"]

    def webhook(self, event) -> str:
        """Deliver `event` as the provider does, let the worker apply it, and return what happened to it."""
        response = event.post(f"{self.url}/webhooks/{self.provider}")
        assert response.status_code == 200 and response.json()["received"] is True, response.text
        if response.json()["outcome"] == "duplicate":  # still waiting in the inbox
            return "duplicate"
        assert response.json()["outcome"] == "queued", response.text
        with self.app.app_context():
            outcomes = list(apply_webhooks().values())
        assert len(outcomes) == 1, outcomes
        return outcomes[0]

    def outbox(self, order_id: int) -> dict[str, tuple[str, datetime]]:
        """The order's messages in the outbox: kind -> (status, due at)."""
        rows = select(OutboxMessage.kind, OutboxMessage.status, OutboxMessage.due_at).where(
            OutboxMessage.order_id == order_id
        )
        return self.db(lambda: {kind: (status, due_at) for kind, status, due_at in db.session.execute(rows)})

    def emails(self, order_id: int) -> dict[str, str]:
        """The order's messages in the outbox: kind -> status."""
        return {kind: status for kind, (status, _due_at) in self.outbox(order_id).items()}

    def dispatch(self, now: datetime | None = None) -> DispatchResult:
        """Send the emails due at `now` (default: now), as the worker's tick does."""
        with self.app.app_context():
            return dispatch_due(now=now or utcnow())

    def dashboard(self, email: str = "creator@example.com") -> requests.Session:
        """A browser logged in to the dashboard (as the shop's creator unless told otherwise)."""
        browser = requests.Session()
        page = browser.get(self.url + "/login", timeout=10).text
        form = {"csrf_token": csrf_in(page), "email": email, "password": PASSWORD}
        response = browser.post(self.url + "/login", data=form, timeout=10)
        assert response.status_code == 200 and "/login" not in response.url, response.url
        return browser

    def cancel_session(self, session_id: int, confirm: bool = True) -> requests.Response:
        """The creator cancels the session on its dashboard page (`confirm`: the box that says they mean it)."""
        browser = self.dashboard()
        page = browser.get(f"{self.url}/dashboard/sessions/{session_id}", timeout=10).text
        data = {"csrf_token": csrf_in(page), **({"confirm": "yes"} if confirm else {})}
        return browser.post(f"{self.url}/dashboard/sessions/{session_id}/cancel", data=data, timeout=30)

    def db(self, fn):
        """Run `fn` in the app's context and commit."""
        with self.app.app_context():
            result = fn()
            db.session.commit()
            return result

    def count(self, model, *where) -> int:
        """How many rows of `model` match `where`."""
        return self.db(lambda: db.session.scalar(select(func.count()).select_from(model).where(*where)))

    def expire_hold_in_db(self, order_id: int) -> None:
        from webinar_pay.models import Order

        self.db(lambda: db.session.execute(
            update(Order).where(Order.id == order_id).values(hold_expires_at=utcnow() - timedelta(minutes=1))
        ))  # fmt: skip


@pytest.fixture
def published_session(create_creator, client) -> Callable:
    """`published_session(price=…, capacity=…)` -> (session id, creator API client)."""

    def factory(**overrides):
        _creator_id, token = create_creator()
        api = Api(client, token)
        status, body = api.post("/api/v1/sessions", session_payload(**overrides))
        assert status == 201, body
        status, body = api.post(f"/api/v1/sessions/{body['id']}/publish")
        assert status == 200, body
        return body["id"], api

    return factory
