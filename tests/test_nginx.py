"""README's production set-up, for real: Debian's nginx with deploy/nginx-webinar-pay.conf (TLS taken out) in front
of `gunicorn app:app` and `flask --app app worker` started as their systemd units start them, with the environment
of deploy/webinar-pay.env (TRUSTED_PROXIES=1, rate limits in Redis). Clients come from two loopback addresses."""

from __future__ import annotations

import http.cookiejar
import itertools
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.conftest import session_payload
from tests.production_stack import (
    PUBLIC_HOST,
    ROOT,
    Gunicorn,
    Nginx,
    nginx_missing,
    process_environment,
    redis_missing,
    shipped_environment,
    stop,
    unit_command,
)

MISSING = nginx_missing() or redis_missing()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


class FromAddress(HTTPAdapter):
    """Connections from one loopback source address: 127.0.0.1 and 127.0.0.2 are two different clients."""

    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


class Browser:
    """A client of the public site from one address. The site is https to the app, so its cookies are Secure:
    they are kept here by hand, as a browser on https would send them."""

    def __init__(self, base_url: str, source: str):
        self.base_url = base_url
        self.http = requests.Session()
        self.http.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.http.mount("http://", FromAddress(source))
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, headers: dict | None = None, **kwargs) -> requests.Response:
        headers = {"Host": PUBLIC_HOST, **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        response = self.http.request(method, self.base_url + path, headers=headers, allow_redirects=False,
                                     timeout=30, **kwargs)  # fmt: skip
        for cookie in response.raw.headers.getlist("Set-Cookie"):
            name, _sep, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name] = value
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def log_in(self, email: str, password: str, referer: str = f"https://{PUBLIC_HOST}/login", **headers) -> int:
        page = self.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = {"csrf_token": token, "email": email, "password": password}
        return self.post("/login", data=form, headers={"Referer": referer, **headers}).status_code


@dataclass
class Site:
    nginx: Nginx
    gunicorn: Gunicorn
    env: dict[str, str]
    token: str

    def browser(self, source: str = "127.0.0.1") -> Browser:
        return Browser(self.nginx.url, source)

    def published_session(self) -> int:
        creator = self.browser()
        auth = {"Authorization": f"Bearer {self.token}"}
        session_id = creator.post("/api/v1/sessions", json=session_payload(), headers=auth).json()["id"]
        assert creator.post(f"/api/v1/sessions/{session_id}/publish", headers=auth).status_code == 200
        return session_id


def flask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A README command, `flask --app app …`, in the production environment."""
    return subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "app", *args], cwd=ROOT,
                          env=process_environment(env), capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture
def site(create_creator, database_url, fake_stripe, tmp_path: Path) -> Iterator[Site]:
    env = shipped_environment(
        SECRET_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=database_url,
        STRIPE_SECRET_KEY=fake_stripe.api_key,
        STRIPE_WEBHOOK_SECRET=fake_stripe.webhook_secret,
        STRIPE_API_BASE=fake_stripe.base_url,
        RATELIMIT_KEY_PREFIX=f"webinar-pay-nginx-test-{secrets.token_hex(6)}",
        RATELIMIT_CHECKOUT="2 per minute",
        RATELIMIT_LOGIN="2 per minute",
        MAIL_SERVER=None,
    )
    _creator_id, token = create_creator("ada@example.com")
    gunicorn = Gunicorn(env, tmp_path)
    try:
        nginx = Nginx(gunicorn.port)
    except BaseException:
        gunicorn.stop()
        raise
    yield Site(nginx, gunicorn, env, token)
    nginx.stop()
    gunicorn.stop()


_buyers = itertools.count()


def _checkouts(browser: Browser, session_id: int, times: int, headers: dict | None = None) -> list[int]:
    """Checkouts by different buyers (one buyer may only hold HOLDS_PER_BUYER seats) from one browser's address."""
    path = f"/api/v1/sessions/{session_id}/checkout"
    return [
        browser.post(path, json={"name": "Bo Buyer", "email": f"bo{next(_buyers)}@example.com", "provider": "stripe"},
                     headers=headers).status_code
        for _ in range(times)
    ]  # fmt: skip


def test_behind_nginx_each_client_address_has_its_own_checkout_limit(site):
    session_id = site.published_session()
    first, second = site.browser("127.0.0.1"), site.browser("127.0.0.2")
    assert _checkouts(first, session_id, 3) == [201, 201, 429]
    assert _checkouts(first, session_id, 1, headers={"X-Forwarded-For": "203.0.113.9"}) == [429]
    assert _checkouts(second, session_id, 2) == [201, 201]


def test_behind_nginx_each_client_address_has_its_own_login_limit(site):
    first, second = site.browser("127.0.0.1"), site.browser("127.0.0.2")
    assert [first.log_in(f"guess{n}@example.com", "wrong password") for n in range(3)] == [401, 401, 429]
    forged = {"X-Forwarded-For": "198.51.100.4"}
    assert first.log_in("ada@example.com", "correct horse battery", **forged) == 429
    assert second.log_in("ada@example.com", "correct horse battery") == 302


def test_behind_nginx_an_account_has_its_own_login_limit_whatever_the_client(site):
    guesses = [site.browser(f"127.0.0.{n}").log_in("ada@example.com", "wrong password") for n in range(3, 6)]
    assert guesses == [401, 401, 429]  # three clients, one account: its own limit
    assert site.browser("127.0.0.9").log_in("ada@example.com", "correct horse battery") == 429


def test_the_app_sees_https_and_the_public_host_from_nginx_not_from_the_client(site):
    browser = site.browser()
    moved = browser.get("/dashboard", headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"})
    assert moved.status_code == 308 and moved.headers["Location"] == f"https://{PUBLIC_HOST}/dashboard/"
    # Forms over https must come from the site's own https pages: a plain-http referrer is refused.
    assert browser.log_in("ada@example.com", "correct horse battery", referer=f"http://{PUBLIC_HOST}/login") == 400
    assert browser.log_in("ada@example.com", "correct horse battery") == 302
    plain = requests.get(site.nginx.redirect_url + "/s/1?x=1", headers={"Host": PUBLIC_HOST}, allow_redirects=False,
                         timeout=10)  # fmt: skip
    assert (plain.status_code, plain.headers["Location"]) == (301, f"https://{PUBLIC_HOST}/s/1?x=1")


def test_nginx_refuses_a_2_mb_body_and_passes_a_signed_webhook_to_the_worker(site, fake_stripe):
    browser = site.browser()
    huge = browser.post("/webhooks/stripe", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert huge.status_code == 413

    worker = subprocess.Popen(unit_command("webinar-pay-worker.service"), cwd=ROOT,
                              env=process_environment(site.env), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        session_id = site.published_session()
        checkout = browser.post(
            f"/api/v1/sessions/{session_id}/checkout",
            json={"name": "Bo Buyer", "email": "bo@example.com", "provider": "stripe"},
        ).json()
        event = fake_stripe.complete_session(checkout["checkout_url"].rsplit("/", 1)[1])
        delivered = browser.post("/webhooks/stripe", data=event.payload.encode(), headers=event.headers)
        assert (delivered.status_code, delivered.json()["outcome"]) == (200, "queued")
        order_path = f"/api/v1/orders/{checkout['order_id']}"
        auth = {"Authorization": f"Bearer {site.token}"}
        deadline = time.monotonic() + 60
        while browser.get(order_path, headers=auth).json()["status"] != "paid" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert browser.get(order_path, headers=auth).json()["status"] == "paid"

        ready = browser.get("/readyz")
        assert ready.status_code == 200 and ready.json()["worker"]["ok"] is True
        check = flask("worker", "--check", env=site.env)
        assert check.returncode == 0 and "worker ok" in check.stdout
    finally:
        stop(worker)


def test_health_checks_through_nginx_set_no_cookie(site):
    browser = site.browser()
    health = browser.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = browser.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["migrations"]["current"] == ready.json()["migrations"]["head"]
    assert "Set-Cookie" not in health.headers and "Set-Cookie" not in ready.headers


def test_the_access_logs_keep_the_order_id_and_drop_the_ticket_signature(site):
    browser = site.browser()
    session_id = site.published_session()
    checkout = browser.post(
        f"/api/v1/sessions/{session_id}/checkout",
        json={"name": "Bo Buyer", "email": "bo@example.com", "provider": "stripe"},
    ).json()
    ticket_path = checkout["ticket_url"].split(PUBLIC_HOST, 1)[1]
    order_id, signature = ticket_path.removeprefix("/t/").split(".", 1)
    assert browser.get(ticket_path, headers={"Referer": f"https://{PUBLIC_HOST}{ticket_path}"}).status_code == 200
    # The ticket's token does not open the join redirect; its log line is redacted all the same.
    assert browser.get(ticket_path.replace("/t/", "/j/") + "?pwd=x").status_code == 404
    access_log = site.nginx.access_log()
    gunicorn_access, gunicorn_errors = site.gunicorn.logs()
    for log in (access_log, gunicorn_access, gunicorn_errors):
        assert signature not in log
    assert f"GET /t/{order_id}.[redacted] HTTP/1.1" in access_log
    assert f'"https://{PUBLIC_HOST}/t/{order_id}.[redacted]"' in access_log
    assert f"GET /j/{order_id}.[redacted] HTTP/1.1" in access_log
    assert f"/t/{order_id}.[redacted]" in gunicorn_access
