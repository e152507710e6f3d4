"""Ticket and join tokens never reach a log line: the order id stays, the signature goes (webinar_pay/logs.py)."""

from __future__ import annotations

import io
import logging
import re
import secrets
from pathlib import Path

import pytest
import requests
from gunicorn.config import Config

from tests.conftest import LiveShop
from tests.production_stack import PUBLIC_HOST, Gunicorn, shipped_environment
from webinar_pay.logs import GunicornLogger, RedactTokens, redact

SIGNATURE = "Zq3xV8-pN2_kLm4RtY7uWb1cD5eFgH9j"  # the shape of a ticket signature: 32 url-safe characters


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        (f"GET /t/42.{SIGNATURE} HTTP/1.1", "GET /t/42.[redacted] HTTP/1.1"),
        (f"GET /t/42.{SIGNATURE}/receipt.pdf", "GET /t/42.[redacted]/receipt.pdf"),
        (f"POST /t/7.{SIGNATURE}/cancel", "POST /t/7.[redacted]/cancel"),
        (f"GET /t/42.{SIGNATURE}?from=checkout", "GET /t/42.[redacted]?from=checkout"),
        (f"https://{PUBLIC_HOST}/j/42.{SIGNATURE}", f"https://{PUBLIC_HOST}/j/42.[redacted]"),
        (f'"Referer: https://x/t/42.{SIGNATURE}"', '"Referer: https://x/t/42.[redacted]"'),
        (f"/login?next=%2Ft%2F42.{SIGNATURE}", "/login?next=%2Ft%2F42.[redacted]"),
        (f"/t/42.{SIGNATURE}?token=5O190127TN364715T&PayerID=X", "/t/42.[redacted]?token=[redacted]&PayerID=X"),
        ("https://zoom.us/j/81234567890?pwd=sEcReT", "https://zoom.us/j/[redacted]?pwd=[redacted]"),
        ("Bearer wp_abcdefghijklmnopqrstuvwxyz012345", "Bearer wp_[redacted]"),
        ("GET /s/42 HTTP/1.1", "GET /s/42 HTTP/1.1"),
        ("GET /dashboard/orders/42 HTTP/1.1", "GET /dashboard/orders/42 HTTP/1.1"),
    ],
)
def test_redaction_keeps_the_order_id_and_drops_the_secret(line, logged):
    assert redact(line) == logged
    assert redact(logged) == logged


def test_a_logged_exception_loses_the_token_in_its_message_and_its_traceback():
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactTokens())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError(f"cannot load https://{PUBLIC_HOST}/t/42.{SIGNATURE}")
        except ValueError:
            logger.exception("Exception on %s [%s]", f"/t/42.{SIGNATURE}", "GET")
        logger.warning("slow request", stack_info=True)
    finally:
        logger.removeHandler(handler)
    text = output.getvalue()
    assert SIGNATURE not in text
    assert "ERROR Exception on /t/42.[redacted] [GET]" in text
    assert f"ValueError: cannot load https://{PUBLIC_HOST}/t/42.[redacted]" in text and "Traceback" in text


def test_the_development_server_log_shows_no_ticket_token(live_server, create_creator, caplog):
    caplog.set_level(logging.INFO, logger="werkzeug")
    shop = LiveShop(live_server(), create_creator()[1])
    _status, checkout = shop.checkout(shop.session())
    ticket_url = checkout["ticket_url"]
    order_id, signature = ticket_url.rsplit("/t/", 1)[1].split(".", 1)
    assert requests.get(ticket_url, timeout=10).status_code == 200
    join_url = shop.join_url(int(order_id))
    assert requests.get(join_url, timeout=10).status_code == 403  # not paid yet: the way in stays shut
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == "werkzeug")
    logged = re.sub(r"\x1b\[[0-9;]*m", "", logged)  # the development server colours its lines
    assert f'"GET /t/{order_id}.[redacted] HTTP/1.1" 200' in logged
    assert f'"GET /j/{order_id}.[redacted] HTTP/1.1" 403' in logged
    assert signature not in caplog.text and join_url.rsplit(".", 1)[1] not in caplog.text


@pytest.mark.slow
def test_gunicorn_logs_keep_the_order_id_only_even_for_a_request_that_fails(tmp_path: Path):
    """A real gunicorn with the logger class of gunicorn.conf.py, on a database that was never migrated: the ticket
    page raises, and the access log, the error log and the app's traceback must not show the signature."""
    env = shipped_environment(SECRET_KEY=secrets.token_urlsafe(48), DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}",
                              MAIL_SERVER=None, RATELIMIT_STORAGE_URI="memory://")  # fmt: skip
    gunicorn = Gunicorn(env, tmp_path)
    try:
        ticket = f"/t/42.{SIGNATURE}"
        failed = requests.get(
            f"{gunicorn.url}{ticket}?from=checkout",
            timeout=30,
            headers={"Host": PUBLIC_HOST, "Referer": f"https://{PUBLIC_HOST}/j/42.{SIGNATURE}"},
        )
        assert failed.status_code == 500
        login = requests.get(f"{gunicorn.url}/login?next=%2Ft%2F42.{SIGNATURE}", timeout=30)
        assert login.status_code == 200
    finally:
        access, errors = gunicorn.logs()
    assert SIGNATURE not in access and SIGNATURE not in errors
    assert '"GET /t/42.[redacted]?from=checkout HTTP/1.1" 500' in access
    assert f'"https://{PUBLIC_HOST}/j/42.[redacted]"' in access
    assert "GET /login?next=%2Ft%2F42.[redacted] HTTP/1.1" in access
    assert "Exception on /t/42.[redacted] [GET]" in errors
    assert "Traceback (most recent call last)" in errors and "no such table: orders" in errors


def test_the_gunicorn_logger_redacts_its_own_error_lines(tmp_path: Path):
    config = Config()
    config.set("errorlog", str(tmp_path / "error.log"))
    logger = GunicornLogger(config)
    try:
        raise OSError(f"client went away during /j/42.{SIGNATURE}")
    except OSError:
        logger.exception("Error handling request %s", f"/t/42.{SIGNATURE}/receipt.pdf")
    for handler in list(logger.error_log.handlers):
        logger.error_log.removeHandler(handler)
        handler.close()
    text = (tmp_path / "error.log").read_text()
    assert SIGNATURE not in text
    assert "Error handling request /t/42.[redacted]/receipt.pdf" in text
    assert "OSError: client went away during /j/42.[redacted]" in text
