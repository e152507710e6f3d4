"""Health checks for load balancers (/healthz, /readyz) and the worker heartbeat (`flask --app app worker --check`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import select, text

from tests.conftest import _base_config, free_port
from webinar_pay import create_app
from webinar_pay.extensions import db
from webinar_pay.models import WorkerHeartbeat, utcnow
from webinar_pay.services import heartbeat

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "webinar_pay" / "migrations"


def flask(*args: str, database_url: str, **extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "WEBINAR_PAY_ENV": "test", "SCHEDULER_ENABLED": "0", **extra}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _head() -> str:
    (head,) = ScriptDirectory(str(MIGRATIONS)).get_heads()
    return head


# -- /healthz and /readyz ----------------------------------------------------------------------------------------


def test_healthz_answers_without_the_database_and_readyz_says_it_is_unreachable():
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    client = create_app(_base_config(unreachable)).test_client()
    health = client.get("/healthz")
    assert (health.status_code, health.get_json()) == (200, {"status": "ok"})
    assert "Set-Cookie" not in health.headers and health.headers["Cache-Control"] == "no-store"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {"status": "unavailable", "error": "database_unreachable",
                                "message": "The database does not answer.", "database": "unreachable"}  # fmt: skip


def test_readyz_is_ready_on_a_migrated_database_and_reports_the_worker(app):
    client = app.test_client()
    ready = client.get("/readyz")
    body = ready.get_json()
    assert ready.status_code == 200 and "Set-Cookie" not in ready.headers
    assert body["status"] == "ready" and body["database"] == "ok"
    assert body["migrations"] == {"current": [_head()], "head": [_head()]}
    # No worker: the site can still serve and store webhooks, so it stays ready; the worker's state is reported.
    assert body["worker"]["ok"] is False and body["worker"]["last_beat"] is None
    with app.app_context():
        heartbeat.beat()
    worker = client.get("/readyz").get_json()["worker"]
    assert worker["ok"] is True and worker["alive"] == 1 and worker["seconds_ago"] <= 1


def test_readyz_refuses_traffic_until_the_migrations_are_applied(tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.sqlite3'}"
    app = create_app(_base_config(url))
    client = app.test_client()
    never = client.get("/readyz")
    assert never.status_code == 503 and never.get_json()["migrations"] == {"current": [], "head": [_head()]}
    previous = ScriptDirectory(str(MIGRATIONS)).get_revision(_head()).down_revision
    with app.app_context():
        upgrade(revision=previous)
    behind = client.get("/readyz")
    body = behind.get_json()
    assert behind.status_code == 503 and body["error"] == "migrations_pending"
    assert body["migrations"] == {"current": [previous], "head": [_head()]}
    assert "flask --app app db upgrade" in body["message"]
    with app.app_context():
        upgrade()
        db.engine.dispose()
    assert client.get("/readyz").status_code == 200


def test_readyz_refuses_traffic_for_code_older_than_the_database_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'ahead.sqlite3'}"
    app = create_app(_base_config(url))
    with app.app_context():
        upgrade()
        db.session.execute(text("UPDATE alembic_version SET version_num = '9999_from_a_newer_release'"))
        db.session.commit()
    ahead = app.test_client().get("/readyz")
    body = ahead.get_json()
    assert ahead.status_code == 503 and body["error"] == "schema_newer_than_code"
    assert body["migrations"] == {"current": ["9999_from_a_newer_release"], "head": [_head()]}
    with app.app_context():
        db.engine.dispose()


# -- the worker's heartbeat --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_worker_check_fails_without_a_recent_heartbeat_and_says_when_the_last_one_was(app, database_url):
    never = flask("worker", "--check", database_url=database_url)
    assert never.returncode == 1 and "no worker has ever run" in never.stdout
    with app.app_context():
        heartbeat.beat(now=utcnow() - timedelta(minutes=10))
    stale = flask("worker", "--check", database_url=database_url, SCHEDULER_TICK_SECONDS="30")
    assert stale.returncode == 1
    assert re.search(r"no worker alive: the last beat was \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, 6\d\d s ago, from ",
                     stale.stdout), stale.stdout  # fmt: skip
    assert "one is expected every 90 s at most" in stale.stdout
    with app.app_context():
        heartbeat.beat()
    fresh = flask("worker", "--check", database_url=database_url)
    assert fresh.returncode == 0 and "worker ok: 1 alive, last beat" in fresh.stdout


@pytest.mark.slow
def test_a_running_worker_beats_and_clears_the_rows_of_workers_long_gone(app, database_url):
    with app.app_context():
        db.session.add(WorkerHeartbeat(host="gone.example", pid=4242, started_at=utcnow() - timedelta(hours=3),
                                       last_beat_at=utcnow() - timedelta(hours=2)))  # fmt: skip
        db.session.commit()
    env = {**os.environ, "DATABASE_URL": database_url, "WEBINAR_PAY_ENV": "test", "SCHEDULER_TICK_SECONDS": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while flask("worker", "--check", database_url=database_url).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        check = flask("worker", "--check", database_url=database_url)
        assert check.returncode == 0 and f"pid {worker.pid}" in check.stdout
        with app.app_context():
            rows = db.session.execute(select(WorkerHeartbeat.host, WorkerHeartbeat.pid)).all()
        assert [pid for _host, pid in rows] == [worker.pid]
    finally:
        worker.terminate()
        worker.wait(timeout=30)
