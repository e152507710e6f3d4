"""Rate limits see the real client behind the reverse proxies named by TRUSTED_PROXIES, and are shared through
Redis by every process in production."""

from __future__ import annotations

import os

import pytest

from tests.conftest import Api, session_payload
from tests.test_web import csrf_token

# Two checkouts a minute per client address. One buyer checks out again and again: the limit on unpaid seats per
# buyer (tests/test_abuse_limits.py) is off, so that only the request rate limit answers 429 here.
CHECKOUT_LIMIT = {"RATELIMIT_ENABLED": True, "RATELIMIT_CHECKOUT": "2 per minute", "HOLDS_PER_BUYER": 0}


def _checkout_statuses(client, session_id: int, forwarded_for: str | None, times: int) -> list[int]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    buyer = {"name": "Bo", "email": "bo@example.com", "provider": "stripe"}
    return [
        client.post(f"/api/v1/sessions/{session_id}/checkout", json=buyer, headers=headers).status_code
        for _ in range(times)
    ]


def _published(app, create_creator) -> int:
    api = Api(app.test_client(), create_creator()[1])
    session_id = api.post("/api/v1/sessions", session_payload())[1]["id"]
    assert api.post(f"/api/v1/sessions/{session_id}/publish")[0] == 200
    return session_id


def test_behind_one_trusted_proxy_each_buyer_has_their_own_checkout_limit(make_app, stripe_config, create_creator):
    app = make_app(TRUSTED_PROXIES=1, **CHECKOUT_LIMIT, **stripe_config)
    session_id = _published(app, create_creator)
    client = app.test_client()  # every request comes from the proxy's own address
    assert _checkout_statuses(client, session_id, "203.0.113.7", 3) == [201, 201, 429]
    assert _checkout_statuses(client, session_id, "198.51.100.9", 2) == [201, 201]


def test_forwarded_addresses_are_ignored_without_trusted_proxies(make_app, stripe_config, create_creator):
    """Anyone can send X-Forwarded-For: with no proxy configured, changing it must not buy a fresh limit."""
    app = make_app(**CHECKOUT_LIMIT, **stripe_config)
    session_id = _published(app, create_creator)
    client = app.test_client()
    assert _checkout_statuses(client, session_id, "203.0.113.7", 2) == [201, 201]
    assert _checkout_statuses(client, session_id, "198.51.100.9", 1) == [429]


def test_a_client_cannot_forge_its_address_past_the_trusted_proxy(make_app, stripe_config, create_creator):
    """The proxy appends the address it saw; what the client wrote before it is not believed."""
    app = make_app(TRUSTED_PROXIES=1, **CHECKOUT_LIMIT, **stripe_config)
    session_id = _published(app, create_creator)
    client = app.test_client()
    statuses = [_checkout_statuses(client, session_id, f"10.0.0.{n}, 203.0.113.7", 1)[0] for n in range(3)]
    assert statuses == [201, 201, 429]


def _redis_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _redis_up(), reason="no Redis server on 127.0.0.1:6379")
def test_two_processes_share_the_login_limit_through_redis(make_app, stripe_config):
    """Two app instances (two gunicorn workers) on one Redis store count the same attempts together."""
    import redis

    # Flask-Limiter keeps the first key prefix it was given for the life of the process: one per test process.
    prefix = f"webinar-pay-test-{os.getpid()}"
    store = redis.Redis.from_url("redis://127.0.0.1:6379")
    for key in store.scan_iter(f"*{prefix}*"):
        store.delete(key)
    shared = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_LOGIN": "3 per minute",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
        "RATELIMIT_KEY_PREFIX": prefix,
        **stripe_config,
    }
    first, second = make_app(**shared).test_client(), make_app(**shared).test_client()
    statuses = [
        client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "email": "a@example.com",
                                    "password": "wrong"}).status_code
        for client in (first, second, first, second)
    ]  # fmt: skip
    assert statuses == [401, 401, 401, 429]
