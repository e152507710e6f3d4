"""TOTP two-factor authentication through the HTTP app: enrolment by a QR code drawn on the server, the first code,
recovery codes shown once and stored hashed, codes at log-in (wrong, replayed within their step, one step of clock
skew), fresh codes for new API tokens, bearer tokens unaffected, and the operator's `creators reset-2fa`."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from tests.conftest import Api
from tests.test_web import csrf_token, log_in, signup
from webinar_pay.extensions import db
from webinar_pay.models import Creator, LoginRecord, RecoveryCode
from webinar_pay.web import CONTENT_SECURITY_POLICY

PASSWORD = "correct horse battery"


def page(response) -> str:
    return response.get_data(as_text=True)


def fresh_step() -> None:
    """Wait, if needed, until the current 30-second step has at least 8 seconds left, so that a test's codes
    are read in the step they were made for."""
    left = 30 - time.time() % 30
    if left < 8:
        time.sleep(left + 0.2)


def code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps))


def enrol(client) -> tuple[str, list[str]]:
    """Turn two-factor authentication on for the logged-in creator; the secret and the recovery codes."""
    client.post("/account/2fa", data={"csrf_token": csrf_token(client, "/account/2fa"), "action": "start"})
    setup = page(client.get("/account/2fa"))
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', setup)[1]
    fresh_step()
    done = client.post("/account/2fa", data={"csrf_token": csrf_token(client, "/account/2fa"), "action": "confirm",
                                             "code": code(secret)})  # fmt: skip
    assert done.status_code == 200, page(done)
    return secret, re.findall(r"<li><code>([a-z2-9-]{19})</code></li>", page(done))


def password_step(client, email: str = "ada@example.com", password: str = PASSWORD):
    return log_in(client, email, password)


def send_code(client, value: str):
    return client.post("/login/code", data={"csrf_token": csrf_token(client, "/login"), "code": value})


@pytest.fixture
def enrolled(app, client):
    signup(client, "ada@example.com")
    secret, codes = enrol(client)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard/")})
    with app.app_context():  # as if enrolled five minutes ago: the first code's step is long gone
        db.session.execute(update(Creator).values(totp_last_step=int(time.time()) // 30 - 10))
        db.session.commit()
    return secret, codes


def test_enrolment_shows_a_qr_code_drawn_here_and_needs_a_right_first_code(app, client):
    signup(client, "ada@example.com")
    assert "Off." in page(client.get("/account/2fa"))
    client.post("/account/2fa", data={"csrf_token": csrf_token(client, "/account/2fa"), "action": "start"})
    response = client.get("/account/2fa")
    setup = page(response)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY  # strict as everywhere
    assert re.search(r'<img id="totp-qr" src="data:image/svg\+xml;charset=utf-8,%3Csvg', setup)
    secret = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', setup)[1]
    with app.app_context():  # the secret is not stored as such
        creator = db.session.scalar(select(Creator))
        assert creator.totp_secret and secret not in creator.totp_secret and creator.totp_enabled_at is None

    fresh_step()
    for wrong in ("000000" if code(secret) != "000000" else "111111", "12345", "abcdef", "1" * 500, "١٢٣٤٥٦"):
        response = client.post("/account/2fa", data={"csrf_token": csrf_token(client, "/account/2fa"),
                                                     "action": "confirm", "code": wrong})  # fmt: skip
        assert response.status_code == 401 and "That code is not right." in page(response)
    with app.app_context():
        assert db.session.scalar(select(Creator)).totp_enabled_at is None

    response = client.post("/account/2fa", data={"csrf_token": csrf_token(client, "/account/2fa"),
                                                 "action": "confirm", "code": code(secret)})  # fmt: skip
    codes = re.findall(r"<li><code>([a-z2-9-]{19})</code></li>", page(response))
    assert response.status_code == 200 and len(set(codes)) == 10
    assert "shown only this once" in page(response)
    assert not re.findall(r"<li><code>", page(client.get("/account/2fa")))  # never shown again
    with app.app_context():
        assert db.session.scalar(select(Creator)).totp_enabled_at is not None
        stored = db.session.scalars(select(RecoveryCode.code_hash)).all()
        assert len(stored) == 10 and not set(stored) & ({c.replace("-", "") for c in codes} | set(codes))


def test_log_in_asks_for_the_code_and_refuses_wrong_and_replayed_ones(app, client, enrolled):
    secret, _codes = enrolled
    response = password_step(client)
    assert response.status_code == 302 and response.location == "/login/code"
    assert client.get("/dashboard/").status_code == 302  # the password alone opens nothing

    wrong = send_code(client, "000000" if code(secret) != "000000" else "111111")
    assert wrong.status_code == 401 and "That code is not right." in page(wrong)
    assert client.get("/dashboard/").status_code == 302
    fresh_step()
    now_code = code(secret)
    assert send_code(client, now_code).status_code == 302
    assert client.get("/dashboard/").status_code == 200

    again = app.test_client()
    password_step(again)
    replay = send_code(again, now_code)  # the same code, within its 30 seconds
    assert replay.status_code == 401 and "That code was just used." in page(replay)
    assert again.get("/dashboard/").status_code == 302
    with app.app_context():
        assert [r.method for r in db.session.scalars(select(LoginRecord).order_by(LoginRecord.id))][-1] == "totp"


def test_one_step_of_clock_skew_is_accepted_and_no_more(app, client, enrolled):
    secret, _codes = enrolled
    fresh_step()
    password_step(client)
    assert send_code(client, code(secret, -2)).status_code == 401  # a minute slow: too far
    assert send_code(client, code(secret, -1)).status_code == 302  # 30 seconds slow
    late = app.test_client()
    password_step(late)
    assert send_code(late, code(secret, -1)).status_code == 401  # that step is spent
    assert send_code(late, code(secret, +1)).status_code == 302  # 30 seconds fast


def test_a_recovery_code_works_once(app, client, enrolled):
    _secret, codes = enrolled
    password_step(client)
    response = send_code(client, "  " + codes[0].upper() + " ")
    assert response.status_code == 302
    assert "You used a recovery code" in page(client.get(response.location))
    other = app.test_client()
    password_step(other)
    reused = send_code(other, codes[0])
    assert reused.status_code == 401 and "That code is not right." in page(reused)
    assert send_code(other, codes[1]).status_code == 302
    assert "8 recovery codes left." in page(other.get("/account/2fa"))


def test_the_code_page_lasts_five_minutes_and_needs_the_password_first(app, client, enrolled, monkeypatch):
    secret, _codes = enrolled
    response = client.get("/login/code")
    assert response.status_code == 302 and response.location == "/login"
    password_step(client)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 301)
    response = send_code(client, code(secret))
    assert response.status_code == 302 and response.location == "/login"
    monkeypatch.undo()
    assert client.get("/dashboard/").status_code == 302


def test_new_api_tokens_need_a_fresh_code_and_bearer_tokens_are_unaffected(app, client, enrolled):
    secret, codes = enrolled
    fresh_step()
    password_step(client)
    login_code = code(secret)
    send_code(client, login_code)
    token = csrf_token(client, "/account")
    for value, message in (("", "That code is not right."), (codes[2], "That code is not right."),
                           (login_code, "That code was just used.")):  # fmt: skip
        refused = client.post("/account/tokens", data={"csrf_token": token, "name": "Zapier", "code": value})
        assert refused.status_code == 401 and message in page(refused), value
    created = client.post("/account/tokens", data={"csrf_token": token, "name": "Zapier", "code": code(secret, 1)})
    secret_token = re.search(r'<pre id="new-token">(wp_[^<]+)</pre>', page(created))[1]
    assert Api(app.test_client(), secret_token).get("/api/v1/sessions")[0] == 200  # no code for the API


def test_turning_it_off_needs_a_code_and_the_operator_can_reset_it(app, client, enrolled):
    secret, codes = enrolled
    fresh_step()
    password_step(client)
    send_code(client, code(secret))
    refused = client.post("/account/2fa", data={"csrf_token": csrf_token(client, "/account/2fa"),
                                                "action": "disable", "code": "123"})  # fmt: skip
    assert refused.status_code == 401
    with app.app_context():
        assert db.session.scalar(select(Creator)).has_two_factor
    odd = client.post("/account/2fa", data={"csrf_token": csrf_token(client, "/account/2fa"), "action": "what"})
    assert odd.status_code == 400

    result = app.test_cli_runner().invoke(args=["creators", "reset-2fa", "ada@example.com"])
    assert result.exit_code == 0 and "turned off" in result.output
    assert client.get("/dashboard/").status_code == 302  # the operator's reset ends the sessions too
    assert password_step(client).location == "/dashboard/"  # the password alone is enough again
    with app.app_context():
        creator = db.session.scalar(select(Creator))
        assert creator.totp_secret is None and db.session.scalar(select(RecoveryCode)) is None
    missing = app.test_cli_runner().invoke(args=["creators", "reset-2fa", "nobody@example.com"])
    assert missing.exit_code != 0 and "no creator with email nobody@example.com" in missing.output


def test_new_recovery_codes_replace_the_old_ones(app, client, enrolled):
    secret, old_codes = enrolled
    fresh_step()
    password_step(client)
    send_code(client, code(secret))
    with_recovery = client.post("/account/2fa", data={"csrf_token": csrf_token(client, "/account/2fa"),
                                                      "action": "codes", "code": old_codes[0]})  # fmt: skip
    assert with_recovery.status_code == 401  # a fresh code from the app, not a recovery code
    response = client.post("/account/2fa", data={"csrf_token": csrf_token(client, "/account/2fa"),
                                                 "action": "codes", "code": code(secret, 1)})  # fmt: skip
    new_codes = re.findall(r"<li><code>([a-z2-9-]{19})</code></li>", page(response))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    other = app.test_client()
    password_step(other)
    assert send_code(other, old_codes[1]).status_code == 401
    assert send_code(other, new_codes[0]).status_code == 302
