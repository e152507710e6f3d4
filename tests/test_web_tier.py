"""The web tier as shipped: gunicorn.conf.py serves the app and says when its rate limits would not hold, and the
database pool is bounded, failing a request that finds no connection rather than letting it wait forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from webinar_pay.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def _gunicorn(database_url: str, store: str) -> tuple[int, str]:
    """Start `gunicorn app:app` with the shipped file (two workers), fetch the home page, stop; (status, log)."""
    port = free_port()
    env = {**os.environ, "WEBINAR_PAY_ENV": "test", "DATABASE_URL": database_url, "RATELIMIT_STORAGE_URI": store,
           "WEB_CONCURRENCY": "2", "SCHEDULER_ENABLED": "0"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "app:app", "-b", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    status = 0
    try:
        for _ in range(300):
            try:
                status = requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code
                break
            except requests.ConnectionError:
                time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        _out, log = process.communicate(timeout=60)
    return status, log


@pytest.mark.slow
def test_the_shipped_gunicorn_conf_serves_the_app_and_warns_when_each_worker_counts_its_own_limits(database_url):
    status, log = _gunicorn(database_url, "memory://")
    assert status == 200, log
    assert "Using worker: gthread" in log  # the worker class the file sets
    assert "RATELIMIT_STORAGE_URI is memory:// with 2 workers" in log
    assert "every rate limit is 2 times what it says" in log


@pytest.mark.slow
def test_a_shared_rate_limit_store_brings_no_warning(database_url):
    status, log = _gunicorn(database_url, "redis://127.0.0.1:6379")
    assert status == 200, log
    assert "RATELIMIT_STORAGE_URI is" not in log


@pytest.mark.parametrize("size", [3, 24])
def test_the_database_pool_is_bounded_and_gives_up_rather_than_hang(make_app, size):
    app = make_app(DATABASE_POOL_SIZE=size)
    with app.app_context():
        assert db.engine.pool.size() == size
        assert 0 < db.engine.pool.timeout() <= 30
