"""`make run` on another port: the links the app hands out (the checkout's pay page, tickets, emails) follow it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import PASSWORD, Api, _base_config, _migrate, free_port, session_payload
from webinar_pay import create_app
from webinar_pay.extensions import db

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent


def _creator_token(database_url: str) -> str:
    from webinar_pay.services.creators import create_api_token, create_creator

    app = create_app(_base_config(database_url))
    with app.app_context():
        creator = create_creator("ada@example.com", "Ada Teacher", PASSWORD, "Europe/Paris", verified=True)
        token = create_api_token(creator)
        db.engine.dispose()
    return token


def _make_run(port: int, database_url: str, **extra: str) -> subprocess.Popen:
    """`make run PORT=…` as a person types it. The test's own database is migrated here, so make is told not to
    touch the stamp of the working copy's database (`-o instance/.migrated`) nor reinstall the virtualenv."""
    env = {k: v for k, v in os.environ.items() if k not in ("BASE_URL", "WEBINAR_PAY_ENV")}
    env.update(PORT=str(port), DATABASE_URL=database_url, SCHEDULER_ENABLED="0", **extra)
    command = ["make", "--no-print-directory", f"VENV={VENV}", "-o", "instance/.migrated", "-o", f"{VENV}/.installed",
               "run"]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip


def _wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            if requests.get(url + "/healthz", timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # still starting
            time.sleep(0.2)
    raise AssertionError("make run did not start within a minute")


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)  # the debug server's reloader runs the app in a child process
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    process.stderr.close()


@pytest.mark.slow
@pytest.mark.parametrize("explicit_base_url", [False, True], ids=["port_only", "base_url_set"])
def test_make_run_on_another_port_sends_buyers_back_to_that_port(tmp_path, explicit_base_url):
    database_url = f"sqlite:///{tmp_path / 'run.sqlite3'}"
    _migrate(database_url)
    token = _creator_token(database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    extra = {"BASE_URL": "https://tickets.example.com"} if explicit_base_url else {}
    process = _make_run(port, database_url, **extra)
    try:
        _wait_until_up(url, process)
        creator = Api(url, token)
        status, session = creator.post("/api/v1/sessions", session_payload())
        assert status == 201, session
        assert creator.post(f"/api/v1/sessions/{session['id']}/publish")[0] == 200
        status, checkout = Api(url).post(f"/api/v1/sessions/{session['id']}/checkout",
                                         {"name": "Bo Buyer", "email": "bo@example.com"})  # fmt: skip
        assert status == 201, checkout
    finally:
        _stop(process)
    expected = "https://tickets.example.com" if explicit_base_url else url
    assert checkout["checkout_url"].startswith(f"{expected}/sandbox/pay/"), checkout
    assert checkout["ticket_url"].startswith(f"{expected}/t/"), checkout
