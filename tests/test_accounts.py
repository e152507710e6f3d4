"""Creator accounts through the HTTP app: sign-up without telling who has an account, address confirmation before
paid sales, password reset by email (expired, reused and tampered links), sessions that end, the account page, API
tokens behind a fresh code, and log-in limits per account. Emails go through the outbox to a real SMTP server."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import Api, session_payload
from tests.test_web import csrf_token, log_in, new_session_form, signup
from webinar_pay.extensions import db
from webinar_pay.models import ApiToken, Creator, LiveSession, LoginRecord, OutboxMessage, utcnow
from webinar_pay.services.outbox.dispatch import dispatch_due

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def app(make_app, stripe_config, smtp):
    """The app with card payments through the fake Stripe and emails to a real SMTP server."""
    return make_app(**stripe_config, **smtp.config)


def delivered(app, smtp, address: str):
    """Send what is due, then the newest email that reached `address` over SMTP."""
    with app.app_context():
        dispatch_due()
    received = smtp.to(address)
    assert received, f"nothing reached {address}"
    return received[-1]


def path_of_link(text: str, kind: str) -> str:
    found = re.search(rf"http://[^/\s]+(/{kind}/\S+)", text)
    assert found, text
    return found[1]


def creator_row(app, email: str) -> Creator:
    with app.app_context():
        creator = db.session.scalar(select(Creator).where(Creator.email == email))
        db.session.expunge(creator)
        return creator


def page(response) -> str:
    return response.get_data(as_text=True)


# -- sign-up and confirmation --------------------------------------------------------------------------------------


def test_signing_up_sends_a_confirmation_and_paid_sessions_wait_for_it(app, client, smtp):
    form = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD, "timezone": "UTC"}
    response = client.post("/signup", data={"csrf_token": csrf_token(client, "/signup"), **form})
    assert response.status_code == 200 and "We sent an email to ada@example.com" in page(response)
    assert client.get("/dashboard/").status_code == 302  # not logged in by signing up
    email = delivered(app, smtp, "ada@example.com")
    assert email.subject == "Confirm your email address"
    confirm = path_of_link(email.text, "confirm")

    # Before confirming: drafts yes, paid sales no, on the dashboard and in the API, with a clear message.
    assert log_in(client, "ada@example.com").status_code == 302
    assert "Confirm your email address to sell paid seats" in page(client.get("/dashboard/"))
    form = new_session_form(csrf_token=csrf_token(client, "/dashboard/sessions/new"), action="publish")
    response = client.post("/dashboard/sessions/new", data=form, follow_redirects=True)
    assert "Confirm your email address before selling paid seats" in page(response)
    with app.app_context():
        session = db.session.scalar(select(LiveSession))
        assert session.status == "draft"
        session_id = session.id
    token = csrf_token(client, "/account")
    created = page(client.post("/account/tokens", data={"csrf_token": token, "name": "cli", "password": PASSWORD}))
    api = Api(client, re.search(r'<pre id="new-token">(wp_[^<]+)</pre>', created)[1])
    status, body = api.post(f"/api/v1/sessions/{session_id}/publish")
    assert status == 403 and body["error"] == "email_not_verified" and "Confirm your email" in body["message"]
    document = api.get("/api/v1/openapi.json")[1]
    assert document["paths"]["/sessions/{session_id}/publish"]["post"]["responses"]["403"] == {
        "$ref": "#/components/responses/EmailNotVerified"
    }
    status, free = api.post("/api/v1/sessions", session_payload(price=0))
    assert api.post(f"/api/v1/sessions/{free['id']}/publish")[0] == 200  # free sessions need no confirmation
    status, body = api.patch(f"/api/v1/sessions/{free['id']}", {"price": 1000})
    assert status == 403 and body["error"] == "email_not_verified"  # nor can a free one on sale turn paid

    # The link confirms; following it again changes nothing; a tampered one is refused.
    response = client.get(confirm, follow_redirects=True)
    assert "ada@example.com is confirmed" in page(response)
    assert client.get(confirm).status_code == 302
    assert creator_row(app, "ada@example.com").email_verified_at is not None
    assert api.post(f"/api/v1/sessions/{session_id}/publish")[0] == 200
    response = client.get(confirm[:-3] + ("abc" if not confirm.endswith("abc") else "abd"))
    assert response.status_code == 400 and "This link is not valid" in page(response)


def test_signing_up_with_a_known_address_looks_the_same_and_tells_its_owner(app, client, smtp):
    signup(client, "ada@example.com")
    other = app.test_client()

    def attempt(email: str):
        return other.post("/signup", data={"csrf_token": csrf_token(other, "/signup"), "name": "Eve", "email": email,
                                           "password": "eve's own passphrase", "timezone": "UTC"})  # fmt: skip

    known, unknown = attempt("ADA@example.com"), attempt("nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert page(known).replace("ADA@example.com", "X") == page(unknown).replace("nobody@example.com", "X")
    email = delivered(app, smtp, "ada@example.com")
    assert email.subject == "You already have an account" and "/forgot" in email.text
    assert log_in(other, "ada@example.com", "eve's own passphrase").status_code == 401  # nothing changed
    assert log_in(other, "ada@example.com", PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short pass1", "Use at least 12 characters."),
        ("qwerty123456", "one of the most common ones"),
        ("Password1234", "one of the most common ones"),  # in the list, whatever the case
        ("x" * 201, "Use at most 200 characters."),
        ("new@example.com", "Do not use your email address or your name"),
        ("line\nbreak passphrase", "printable characters"),
    ],
)
def test_weak_passwords_are_refused_at_sign_up(app, client, password, message):
    form = {"name": "Ada", "email": "new@example.com", "password": password, "timezone": "UTC"}
    response = client.post("/signup", data={"csrf_token": csrf_token(client, "/signup"), **form})
    assert response.status_code == 422 and message in page(response)
    with app.app_context():
        assert db.session.scalar(select(Creator)) is None


# -- password reset ------------------------------------------------------------------------------------------------


def _ask_reset(client, email: str):
    return client.post("/forgot", data={"csrf_token": csrf_token(client, "/forgot"), "email": email})


def _reset(client, path: str, password: str, again: str | None = None):
    return client.post(path, data={"csrf_token": csrf_token(client, "/forgot"), "password": password,
                                   "password_again": password if again is None else again})  # fmt: skip


def test_password_reset_works_once_and_ends_every_session(app, client, smtp):
    signup(client, "ada@example.com")
    stranger = app.test_client()
    known, unknown = _ask_reset(stranger, "ada@example.com"), _ask_reset(stranger, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200 and page(known) == page(unknown)
    assert "If an account uses this address, we sent it a link" in page(known)
    email = delivered(app, smtp, "ada@example.com")
    assert smtp.to("nobody@example.com") == []
    assert email.subject == "Reset your password" and "within 60 minutes" in email.text
    reset = path_of_link(email.text, "reset")
    with app.app_context():  # the copy kept of what was sent does not hold the link
        row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "password_reset"))
        assert "/reset/" not in row.sent_text + row.sent_html and "[link not kept]" in row.sent_text

    # A refused password changes nothing and leaves the link usable.
    assert "The two passwords differ." in page(_reset(stranger, reset, NEW_PASSWORD, "something else entirely"))
    assert "one of the most common ones" in page(_reset(stranger, reset, "qwerty123456"))
    assert "Choose a new password" in page(stranger.get(reset))

    response = _reset(stranger, reset, NEW_PASSWORD)
    assert response.status_code == 302 and response.location == "/login"
    assert client.get("/dashboard/").status_code == 302  # the session that was open has ended
    assert log_in(stranger, "ada@example.com", PASSWORD).status_code == 401
    assert log_in(stranger, "ada@example.com", NEW_PASSWORD).status_code == 302

    used = app.test_client().get(reset)
    assert used.status_code == 400 and "already been used" in page(used)
    second = _reset(app.test_client(), reset, "yet another passphrase")
    assert second.status_code == 400 and "already been used" in page(second)
    assert log_in(app.test_client(), "ada@example.com", NEW_PASSWORD).status_code == 302


def test_expired_and_tampered_reset_links_are_refused_and_change_nothing(app, client, smtp):
    signup(client, "ada@example.com")
    _ask_reset(client, "ada@example.com")
    with app.app_context():  # asked for 61 minutes ago: the link is made from the time it was asked for
        db.session.execute(update(OutboxMessage).where(OutboxMessage.kind == "password_reset")
                           .values(created_at=utcnow() - timedelta(minutes=61)))  # fmt: skip
        db.session.commit()
    expired = path_of_link(delivered(app, smtp, "ada@example.com").text, "reset")
    visitor = app.test_client()
    for response in (visitor.get(expired), _reset(visitor, expired, NEW_PASSWORD)):
        assert response.status_code == 400 and "This link has expired" in page(response)

    _ask_reset(client, "ada@example.com")
    good = path_of_link(delivered(app, smtp, "ada@example.com").text, "reset")
    token = good.rsplit("/", 1)[1]
    head, _dot, signature = token.rpartition(".")
    tampered = [
        f"/reset/{head}.{signature[::-1]}",  # another signature
        f"/reset/{head[:-2]}{'AA' if head[-2:] != 'AA' else 'BB'}.{signature}",  # another payload
        "/reset/" + "x" * 400,  # longer than any link of ours
        "/reset/%E2%80%AE%00",  # odd characters
    ]
    for path in tampered:
        for response in (visitor.get(path), _reset(visitor, path, NEW_PASSWORD)):
            assert response.status_code in (400, 404), path
            if response.status_code == 400:
                assert "This link is not valid" in page(response)
    assert log_in(app.test_client(), "ada@example.com", PASSWORD).status_code == 302  # nothing changed
    assert visitor.get(good).status_code == 200


def test_reset_requests_are_capped_per_account(app, client, smtp):
    signup(client, "ada@example.com")
    for _ in range(5):
        assert _ask_reset(client, "ada@example.com").status_code == 200
    with app.app_context():
        dispatch_due()
    assert [m.subject for m in smtp.to("ada@example.com")].count("Reset your password") == 3


# -- sessions that end ---------------------------------------------------------------------------------------------


def _copy_cookies(source, target) -> None:
    for name in ("session", "remember_token"):
        cookie = source.get_cookie(name)
        if cookie is not None:
            target.set_cookie(name, cookie.value)


def test_logging_out_ends_every_copy_of_the_cookie(app, client):
    signup(client, "ada@example.com")
    thief = app.test_client()
    _copy_cookies(client, thief)
    assert thief.get("/dashboard/").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard/")})
    assert thief.get("/dashboard/").status_code == 302


def test_the_session_cookie_is_new_at_log_in(app, client):
    signup(client, "ada@example.com", confirm=False)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard/")})
    before = app.test_client()
    csrf_token(before, "/login")  # a session exists before logging in
    planted = before.get_cookie("session").value
    log_in(before, "ada@example.com")
    assert before.get_cookie("session").value != planted
    fixated = app.test_client()
    fixated.set_cookie("session", planted)
    assert fixated.get("/dashboard/").status_code == 302  # the cookie from before log-in opens nothing


def test_remember_me_is_a_choice_and_ends_with_the_sessions(app, client):
    signup(client, "ada@example.com")
    assert client.get_cookie("remember_token") is None
    laptop = app.test_client()
    response = log_in(laptop, "ada@example.com", remember="yes")
    cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("remember_token=")]
    assert cookie and "HttpOnly" in cookie[0] and "Expires=" in cookie[0]
    only_remembered = app.test_client()
    only_remembered.set_cookie("remember_token", laptop.get_cookie("remember_token").value)
    assert only_remembered.get("/dashboard/").status_code == 200
    client.post("/account/logout-everywhere", data={"csrf_token": csrf_token(client, "/account")})
    assert client.get("/dashboard/").status_code == 200  # this browser stays in
    for other in (laptop, only_remembered):
        other.delete_cookie("session")
        other.set_cookie("remember_token", laptop.get_cookie("remember_token").value)
        assert other.get("/dashboard/").status_code == 302


def test_changing_the_password_ends_the_other_sessions(app, client):
    signup(client, "ada@example.com")
    phone = app.test_client()
    log_in(phone, "ada@example.com")

    def change(current: str, new: str, again: str | None = None):
        return client.post("/account/password", data={
            "csrf_token": csrf_token(client, "/account"), "current_password": current, "new_password": new,
            "new_password_again": new if again is None else again})  # fmt: skip

    wrong = change("not my password at all", NEW_PASSWORD)
    assert wrong.status_code == 422 and "That is not your current password." in page(wrong)
    weak = change(PASSWORD, "short")
    assert weak.status_code == 422 and "Use at least 12 characters." in page(weak)
    assert phone.get("/dashboard/").status_code == 200  # refusals changed nothing
    assert change(PASSWORD, NEW_PASSWORD).status_code == 302
    assert client.get("/dashboard/").status_code == 200
    assert phone.get("/dashboard/").status_code == 302
    assert log_in(phone, "ada@example.com", NEW_PASSWORD).status_code == 302


# -- the account page ----------------------------------------------------------------------------------------------


def test_the_account_page_changes_name_and_email_and_lists_log_ins(app, client, smtp):
    signup(client, "ada@example.com")
    client.environ_base["HTTP_USER_AGENT"] = "Firefox/128 (test)"
    log_in(client, "ada@example.com")
    account = page(client.get("/account"))
    assert "Firefox/128 (test)" in account and "127.0.0.1" in account

    token = csrf_token(client, "/account")
    assert client.post("/account/profile", data={"csrf_token": token, "name": "Ada Lovelace"}).status_code == 302
    refused = client.post("/account/profile", data={"csrf_token": token, "name": "x" * 500})
    assert refused.status_code == 422 and creator_row(app, "ada@example.com").name == "Ada Lovelace"

    wrong = client.post(
        "/account/email", data={"csrf_token": token, "new_email": "new@example.com", "password": "nope"}
    )
    assert wrong.status_code == 422 and "That is not your current password." in page(wrong)
    bad = client.post("/account/email", data={"csrf_token": token, "new_email": "not an address", "password": PASSWORD})
    assert bad.status_code == 422 and 'id="new_email-error"' in page(bad)
    form = {"csrf_token": token, "new_email": "new@example.com", "password": PASSWORD}
    moved = client.post("/account/email", data=form, follow_redirects=True)
    assert "We sent a link to new@example.com" in page(moved)
    assert creator_row(app, "ada@example.com").pending_email == "new@example.com"  # the login is still the old one
    confirm = path_of_link(delivered(app, smtp, "new@example.com").text, "confirm")
    assert "new@example.com is confirmed" in page(client.get(confirm, follow_redirects=True))
    creator = creator_row(app, "new@example.com")
    assert creator.pending_email is None and creator.email_verified_at is not None
    assert log_in(app.test_client(), "new@example.com").status_code == 302
    assert log_in(app.test_client(), "ada@example.com").status_code == 401


def test_a_new_address_that_another_account_took_meanwhile_is_refused(app, client, smtp):
    signup(client, "ada@example.com")
    token = csrf_token(client, "/account")
    client.post("/account/email", data={"csrf_token": token, "new_email": "bea@example.com", "password": PASSWORD})
    confirm = path_of_link(delivered(app, smtp, "bea@example.com").text, "confirm")
    signup(app.test_client(), "bea@example.com")
    response = client.get(confirm)
    assert response.status_code == 400 and "belongs to another account" in page(response)
    assert creator_row(app, "ada@example.com").email == "ada@example.com"


def test_api_tokens_are_listed_named_and_revoked_and_need_the_password(app, client):
    signup(client, "ada@example.com")
    token = csrf_token(client, "/account")
    no_password = client.post("/account/tokens", data={"csrf_token": token, "name": "Zapier", "password": "wrong"})
    assert no_password.status_code == 422 and "That is not your current password." in page(no_password)
    no_name = client.post("/account/tokens", data={"csrf_token": token, "name": " ", "password": PASSWORD})
    assert no_name.status_code == 422 and "Give the token a name" in page(no_name)
    created = page(client.post("/account/tokens", data={"csrf_token": token, "name": "Zapier", "password": PASSWORD}))
    secret = re.search(r'<pre id="new-token">(wp_[^<]+)</pre>', created)[1]
    api = Api(client, secret)
    assert api.get("/api/v1/sessions")[0] == 200
    listed = page(client.get("/account"))
    assert "Zapier" in listed and secret not in listed and "never" not in listed.split("Zapier", 1)[1][:400]
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id).where(ApiToken.name == "Zapier"))
    other = app.test_client()
    signup(other, "bea@example.com")
    refused = other.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf_token(other, "/account")})
    assert refused.status_code == 404 and api.get("/api/v1/sessions")[0] == 200
    client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": token})
    assert api.get("/api/v1/sessions")[0] == 401


def test_account_pages_need_a_log_in_and_their_forms_a_csrf_token(app, client):
    for path in ("/account", "/account/2fa"):
        assert client.get(path).status_code == 302
    signup(client, "ada@example.com")
    assert client.post("/account/logout-everywhere").status_code == 400
    assert client.post("/account/password", data={"current_password": PASSWORD}).status_code == 400


# -- log-in limits ---------------------------------------------------------------------------------------------------


def test_log_in_attempts_are_limited_per_account_whatever_the_client(make_app, stripe_config):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute", TRUSTED_PROXIES=1, **stripe_config)
    statuses = []
    for number in range(5):
        client = app.test_client()
        client.environ_base["HTTP_X_FORWARDED_FOR"] = f"203.0.113.{number + 1}"
        statuses.append(log_in(client, "Ada@Example.com ", "wrong guess number " + str(number)).status_code)
    assert statuses == [401, 401, 401, 429, 429]
    other = app.test_client()
    other.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.99"
    assert log_in(other, "someone.else@example.com", "wrong guess").status_code == 401


def test_log_ins_are_recorded(app, client):
    signup(client, "ada@example.com")
    with app.app_context():
        records = db.session.scalars(select(LoginRecord)).all()
        assert [(r.method, r.address) for r in records] == [("password", "127.0.0.1")]


# -- the migration -------------------------------------------------------------------------------------------------


def test_the_migration_keeps_existing_creators_selling_and_goes_back(tmp_path):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from tests.conftest import _base_config
    from webinar_pay import create_app

    migrated = create_app(_base_config(f"sqlite:///{tmp_path / 'old.sqlite3'}"))
    with migrated.app_context():
        upgrade(revision="0012_attendee_privacy")
        db.session.execute(text(
            "INSERT INTO creators (id, email, name, password_hash, role, timezone, created_at) "
            "VALUES (1, 'old@example.com', 'Old', 'x', 'creator', 'UTC', '2024-01-02 03:04:05')"))  # fmt: skip
        db.session.commit()
        upgrade(revision="0013_accounts")
        row = db.session.execute(text("SELECT email_verified_at, session_version FROM creators")).one()
        assert (str(row[0]), row[1]) == ("2024-01-02 03:04:05", 0)
        db.session.commit()  # the migration's ALTERs must not wait for this read's transaction
        downgrade(revision="0012_attendee_privacy")
        assert db.session.execute(text("SELECT count(*) FROM creators")).scalar() == 1
        upgrade()
        db.engine.dispose()


# -- hostile input ---------------------------------------------------------------------------------------------------

ODD_VALUES = ["", "\x00", "a" * 5000, "é" * 300, "\u202e", "0" * 40, "<script>", " ", "１２３４５６"]


@pytest.mark.parametrize("value", ODD_VALUES, ids=range(len(ODD_VALUES)))
def test_odd_input_to_the_account_forms_gets_an_answer_not_an_error(app, client, value):
    signup(client, "ada@example.com")
    token = csrf_token(client, "/account")
    posts = [
        ("/account/profile", {"name": value}),
        ("/account/email", {"new_email": value, "password": value}),
        ("/account/password", {"current_password": PASSWORD, "new_password": value, "new_password_again": value}),
        ("/account/tokens", {"name": value, "password": value}),
        ("/account/2fa", {"action": "confirm", "code": value}),
        ("/account/2fa", {"action": value, "code": value}),
    ]
    for path, form in posts:
        response = client.post(path, data={"csrf_token": token, **form})
        assert response.status_code < 500 and response.status_code != 200 or path == "/account/profile", path
    visitor = app.test_client()
    for path, form in [("/login", {"email": value, "password": value}), ("/forgot", {"email": value}),
                       ("/signup", {"email": value, "name": value, "password": value, "timezone": value})]:  # fmt: skip
        assert visitor.post(path, data={"csrf_token": csrf_token(visitor, "/login"), **form}).status_code < 500, path
    for path in ("/reset/", "/confirm/"):
        for token_text in (value.replace("\x00", "%00"), "%ED%A0%80", "%FF" * 10):
            assert visitor.get(path + token_text).status_code in (400, 404)
    assert log_in(app.test_client(), "ada@example.com", PASSWORD).status_code == 302  # nothing changed
