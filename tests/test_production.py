"""Production refuses to run by accident as a demo or with a guessable SECRET_KEY, says so loudly when it runs a
demo on purpose, and README's production commands work with the shipped environment file (deploy/webinar-pay.env).
"""

from __future__ import annotations

import base64
import logging
import random
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.production_stack import DEPLOY, ROOT, process_environment, shipped_environment
from webinar_pay import create_app
from webinar_pay.config import DEV_SECRET_KEY, MIN_SECRET_KEY_BITS, secret_key_bits, secret_key_problem

FLASK = str(Path(sys.executable).parent / "flask")
DEMO_BANNER = "Test mode: this is a demonstration, not a real shop."
PUBLIC_MAILBOX_WARNING = "can be read by anyone"


def flask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([FLASK, "--app", "app", *args], cwd=ROOT, env=process_environment(env), capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """deploy/webinar-pay.env with a fresh key, a fresh SQLite database and no mail server."""
    settings = {"SECRET_KEY": secrets.token_urlsafe(48), "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
                "MAIL_SERVER": None, **overrides}  # fmt: skip
    return shipped_environment(**settings)


# -- SECRET_KEY --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_key",
    [
        lambda rng: base64.urlsafe_b64encode(rng.randbytes(48)).rstrip(b"=").decode(),  # secrets.token_urlsafe(48)
        lambda rng: rng.randbytes(32).hex(),  # secrets.token_hex(32)
    ],
    ids=["token_urlsafe_48", "token_hex_32"],
)
def test_keys_made_by_the_documented_command_are_accepted(make_key):
    rng = random.Random(20261202)
    keys = [make_key(rng) for _ in range(400)] + [secrets.token_urlsafe(48), secrets.token_hex(32)]
    refused = [(key, secret_key_problem(key)) for key in keys if secret_key_problem(key)]
    assert refused == []
    assert min(secret_key_bits(key) for key in keys) > MIN_SECRET_KEY_BITS + 20


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "is missing"),
        ("changeme", "well-known placeholder"),
        (DEV_SECRET_KEY, "well-known placeholder"),
        ("short-but-random-Xk2pLq9w", "is 25 characters long; it needs at least 32"),
        ("a" * 40, "repeats a short pattern"),
        ("k" * 64, "repeats a short pattern"),
        ("ab" * 20, "repeats a short pattern"),
        ("Summer2024!" * 3, "repeats a short pattern"),
        ("aaaabbbbccccddddeeeeffffgggghhhh1", "uses only 9 different characters"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "does not look random"),
        ("qwertyuiopasdfghjklzxcvbnm1234567890QWERTY", "does not look random"),
        ("passwordpasswordpassword12345678x", "does not look random"),
        ("correcthorsebatterystaplecorrecthorse", "does not look random"),
        ("correct horse battery staple is my secret key", "does not look random"),
        ("the quick brown fox jumps over the lazy dog", "does not look random"),
        ("MyCompanyWebinarPaySecretKeyForProduction2025", "does not look random"),
        ("Th1s-is-my-very-secret-production-key-2024!", "does not look random"),
        ("benchmark-secret-key-0123456789-abcdefghijklmnop", "does not look random"),
    ],
)
def test_guessable_secret_keys_are_refused_with_the_reason(key, reason):
    with pytest.raises(RuntimeError) as refusal:
        create_app({"ENV_NAME": "production", "SECRET_KEY": key, "STRIPE_SECRET_KEY": "sk_test_x"})
    message = str(refusal.value)
    assert message.startswith("SECRET_KEY ") and reason in message
    assert "secrets.token_urlsafe(48)" in message


@pytest.mark.slow
def test_the_shipped_environment_file_refuses_to_start_until_its_secret_key_is_replaced(tmp_path):
    env = production_env(tmp_path)
    env["SECRET_KEY"] = shipped_environment()["SECRET_KEY"]
    result = flask("db", "upgrade", env=env)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("RuntimeError: SECRET_KEY is 28 characters long") and "token_urlsafe(48)" in last_line
    assert not (tmp_path / "prod.sqlite3").exists()


@pytest.mark.slow
def test_a_setting_the_app_cannot_use_stops_the_cli_naming_each_variable(tmp_path):
    result = flask("db", "upgrade", env=production_env(tmp_path, MAIL_PORT="abc", TRUSTED_PROXIES="-1"))
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("webinar_pay.config.SettingsError: Cannot start with these settings.")
    assert "MAIL_PORT is 'abc': it expects a whole number from 1 to 65535" in last_line
    assert "TRUSTED_PROXIES is '-1': it expects a whole number, 0 or more" in last_line
    assert not (tmp_path / "prod.sqlite3").exists()


# -- demo mode in production -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_production_without_payment_keys_refuses_to_start_and_says_what_to_set(tmp_path):
    result = flask("db", "upgrade", env=production_env(tmp_path, STRIPE_SECRET_KEY=None, STRIPE_WEBHOOK_SECRET=None))
    assert result.returncode != 0
    for words in ("No payment provider is configured", "STRIPE_SECRET_KEY", "PAYPAL_CLIENT_ID", "DEMO_MODE=1"):
        assert words in result.stderr


@pytest.mark.slow
def test_production_runs_a_demo_only_with_demo_mode_set_and_warns_at_start(tmp_path):
    env = production_env(tmp_path, STRIPE_SECRET_KEY=None, STRIPE_WEBHOOK_SECRET=None, DEMO_MODE="1")
    result = flask("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert "WARNING webinar_pay: DEMO MODE (DEMO_MODE=1, no payment keys)" in result.stderr


def test_a_production_demo_says_so_on_every_page_and_opens_its_mailbox(make_app, caplog):
    caplog.set_level(logging.WARNING, logger="webinar_pay")
    app = make_app(ENV_NAME="production", SECRET_KEY=secrets.token_urlsafe(48), DEMO_MODE=True)
    assert "DEMO MODE" in caplog.text
    client = app.test_client()
    for path in ("/", "/login", "/signup", "/dev/mailbox/"):
        response = client.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and DEMO_BANNER in page and PUBLIC_MAILBOX_WARNING in page, path


def test_development_runs_the_demo_without_demo_mode(make_app):
    """`make run`: no keys, no DEMO_MODE, the demo with its banner and open mailbox."""
    client = make_app(ENV_NAME="development", SECRET_KEY="").test_client()
    page = client.get("/").get_data(as_text=True)
    assert DEMO_BANNER in page
    assert client.get("/dev/mailbox/").status_code == 200


def test_production_with_payment_keys_has_no_banner_no_sandbox_and_no_dev_mailbox(make_app, stripe_config,
                                                                                  create_creator):  # fmt: skip
    app = make_app(ENV_NAME="production", SECRET_KEY=secrets.token_urlsafe(48), **stripe_config)
    create_creator()
    client = app.test_client()
    assert DEMO_BANNER not in client.get("/").get_data(as_text=True)
    assert client.get("/sandbox/pay/sbx_1_abc").status_code == 404
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    login = {"csrf_token": token, "email": "creator@example.com", "password": "correct horse battery"}
    assert client.post("/login", data=login).status_code == 302
    assert client.get("/dev/mailbox/").status_code == 404  # no MAIL_SERVER, yet no mailbox without DEMO_MODE=1


# -- README's commands with the shipped environment ------------------------------------------------------------


@pytest.mark.slow
def test_the_readme_commands_run_with_the_shipped_environment(tmp_path, fake_stripe):
    env = production_env(tmp_path, STRIPE_SECRET_KEY=fake_stripe.api_key, STRIPE_API_BASE=fake_stripe.base_url)
    upgrade = flask("db", "upgrade", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    created = flask("creators", "create", "ada@example.com", "--name", "Ada Teacher", "--password",
                    "a long password", "--timezone", "Europe/Paris", env=env)  # fmt: skip
    assert created.returncode == 0 and "created creator" in created.stdout, created.stderr
    token = flask("tokens", "create", "ada@example.com", env=env)
    assert token.returncode == 0 and token.stdout.strip().splitlines()[-1].startswith("wp_")
    check = flask("worker", "--check", env=env)
    assert check.returncode == 1 and "no worker has ever run" in check.stdout
    waiting = flask("webhooks", env=env)
    assert waiting.returncode == 0 and "0 webhooks waiting" in waiting.stdout


@pytest.mark.slow
def test_the_environment_file_reads_the_same_in_a_shell():
    """README sources it in a shell for the one-off commands; systemd reads it for the units."""
    script = f"set -a; . {DEPLOY / 'webinar-pay.env'}; set +a; env -0"
    result = subprocess.run(["bash", "-c", script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    seen = dict(item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)
    shipped = shipped_environment()
    assert {name: seen.get(name) for name in shipped} == shipped
    assert shipped["MAIL_DEFAULT_SENDER"] == "Tickets <tickets@example.com>" and shipped["TRUSTED_PROXIES"] == "1"


def _unit_copy(unit: str, folder: Path) -> Path:
    """The unit with the install paths pointing at this checkout, so that its files exist here."""
    text = (DEPLOY / unit).read_text()
    text = text.replace("/etc/webinar-pay/env", str(DEPLOY / "webinar-pay.env")).replace("/opt/webinar_pay", str(ROOT))
    text = text.replace(f"{ROOT}/.venv/bin", str(Path(sys.executable).parent))
    (folder / unit).write_text(text)
    return folder / unit


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", ["webinar-pay-web.service", "webinar-pay-worker.service"])
def test_the_systemd_units_are_valid_and_hardened(unit, tmp_path):
    path = _unit_copy(unit, tmp_path)
    verify = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(path)], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
    verdict = security.stdout.strip().splitlines()[-1]
    assert verdict.split()[-2] in {"SAFE", "OK"}, verdict
