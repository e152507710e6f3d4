"""The command line and the migrations, as an operator uses them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from webinar_pay.services.creators import creator_for_api_token

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def flask(*args: str, database_url: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "WEBINAR_PAY_ENV": "test", "SCHEDULER_ENABLED": "0"}
    env.pop("STRIPE_SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=check, timeout=120,
    )  # fmt: skip


def test_creators_and_tokens_from_the_command_line(app, database_url):
    result = flask("creators", "create", "cli@example.com", "--name", "Cli Creator", "--password", "long enough pw",
                   database_url=database_url)  # fmt: skip
    assert "created creator" in result.stdout
    result = flask("tokens", "create", "cli@example.com", database_url=database_url)
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("wp_")
    with app.app_context():
        assert creator_for_api_token(token).email == "cli@example.com"
    duplicate = flask("creators", "create", "cli@example.com", "--name", "X", "--password", "long enough pw",
                      database_url=database_url, check=False)  # fmt: skip
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
    short = flask("creators", "create", "b@example.com", "--name", "X", "--password", "short",
                  database_url=database_url, check=False)  # fmt: skip
    assert short.returncode != 0 and "password" in short.stderr
    missing = flask("tokens", "create", "nobody@example.com", database_url=database_url, check=False)
    assert missing.returncode != 0 and "no creator" in missing.stderr


def test_migrations_build_the_whole_schema_and_match_the_models(tmp_path, database_url):
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        flask("db", "upgrade", database_url=url)
        tables = set(inspect(create_engine(url)).get_table_names())
        assert {"creators", "api_tokens", "live_sessions", "orders", "order_log", "refunds", "enrollments",
                "provider_events", "alembic_version"} <= tables  # fmt: skip
    result = flask("db", "check", database_url=database_url)
    assert "No new upgrade operations detected" in result.stdout + result.stderr
