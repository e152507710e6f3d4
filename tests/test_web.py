"""The HTML side: sign-up, log-in, the creator's forms, the storefront, CSRF and security headers."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from webinar_pay.extensions import db
from webinar_pay.models import Creator, LiveSession, utcnow


def csrf_token(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def account_email(app, address: str, kind: str):
    """The newest account email (`confirm_email`, `password_reset`, `account_exists`) planned for `address`, as the
    dispatcher would send it now."""
    from webinar_pay.models import OutboxMessage
    from webinar_pay.services.outbox.compose import compose

    with app.app_context():
        row = db.session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.to_address == address, OutboxMessage.kind == kind)
            .order_by(OutboxMessage.id.desc())
        )
        assert row is not None, f"no {kind} email for {address}"
        return compose(row)


def link_in(email) -> str:
    """The path of the one link of an account email (its text body)."""
    found = re.search(r"http://[^/\s]+(/(?:confirm|reset)/\S+)", email.text)
    assert found, email.text
    return found[1]


def log_in(client, email="ada@example.com", password="correct horse battery", **extra):
    return client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "email": email,
                                       "password": password, **extra})  # fmt: skip


def signup(client, email="ada@example.com", password="correct horse battery", confirm=True):
    """Sign up, follow the confirmation link (unless `confirm` is False) and log in; the log-in's answer."""
    response = client.post("/signup", data={"csrf_token": csrf_token(client, "/signup"), "name": "Ada", "email": email,
                                            "password": password, "timezone": "America/New_York"})  # fmt: skip
    assert response.status_code == 200 and "Check your inbox" in response.get_data(as_text=True)
    if confirm:
        assert client.get(link_in(account_email(client.application, email, "confirm_email"))).status_code == 302
    return log_in(client, email, password)


def new_session_form(**overrides) -> dict:
    starts = (utcnow() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    form = {"title": "Pottery live", "description": "", "starts_at": starts, "timezone": "America/New_York",
            "duration_minutes": "60", "price": "19.99", "currency": "USD", "capacity": "12", "platform": "link",
            "zoom_meeting_id": "", "zoom_kind": "meeting", "youtube_url": "", "join_link": "https://meet.example.com/p",
            "reminder_offsets_minutes": "1440, 60"}  # fmt: skip
    form.update(overrides)
    return form


def test_signup_create_publish_and_see_it_on_the_storefront(client, app):
    response = signup(client)
    assert response.status_code == 302 and response.location == "/dashboard/"
    with app.app_context():
        creator = db.session.scalar(select(Creator))
        assert creator.password_hash != "correct horse battery" and creator.password_hash.startswith("scrypt:")

    form = new_session_form(csrf_token=csrf_token(client, "/dashboard/sessions/new"), action="publish",
                            starts_at="2031-03-09T19:30")  # fmt: skip
    response = client.post("/dashboard/sessions/new", data=form)
    assert response.status_code == 302
    page = client.get(response.location).get_data(as_text=True)
    assert "Published: your session is on sale." in page
    with app.app_context():
        session = db.session.scalar(select(LiveSession))
        assert (session.price, session.currency, session.status) == (1999, "USD", "published")

    storefront = client.get("/").get_data(as_text=True)
    assert "Pottery live" in storefront and "$19.99" in storefront and "12 seats left" in storefront
    page = client.get(f"/s/{session.id}").get_data(as_text=True)
    assert "Sunday 9 March 2031, 19:30 (ET)" in page  # the organiser's own zone, just after the DST change
    assert "Pay $19.99" in page and 'value="stripe"' in page


def test_form_errors_are_shown_and_nothing_is_saved(client, app):
    signup(client)
    form = new_session_form(csrf_token=csrf_token(client, "/dashboard/sessions/new"), price="19.999", title="",
                            platform="zoom", zoom_meeting_id="12")  # fmt: skip
    response = client.post("/dashboard/sessions/new", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "USD has 2 decimal places" in page and "This field is required." in page and "9 to 12 digits" in page
    with app.app_context():
        assert db.session.scalar(select(LiveSession)) is None


def test_editing_keeps_local_time_and_price(client, app):
    signup(client)
    form = new_session_form(csrf_token=csrf_token(client, "/dashboard/sessions/new"), starts_at="2031-07-04T19:00")
    location = client.post("/dashboard/sessions/new", data=form).location
    session_id = int(location.rstrip("/").rsplit("/", 1)[1])
    page = client.get(f"/dashboard/sessions/{session_id}/edit").get_data(as_text=True)
    assert 'value="2031-07-04T19:00"' in page and 'value="19.99"' in page
    form.update(csrf_token=csrf_token(client, f"/dashboard/sessions/{session_id}/edit"), price="25")
    assert client.post(f"/dashboard/sessions/{session_id}/edit", data=form).status_code == 302
    with app.app_context():
        session = db.session.get(LiveSession, session_id)
        assert session.price == 2500 and session.starts_at.isoformat() == "2031-07-04T23:00:00+00:00"


def test_forms_without_csrf_token_are_refused(client, app):
    response = client.post("/signup", data={"name": "Eve", "email": "eve@example.com", "password": "x" * 12,
                                            "timezone": "UTC"})  # fmt: skip
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Creator)) is None


def test_login_logout_and_wrong_password(client):
    signup(client)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard/")})
    assert client.get("/dashboard/").status_code == 302
    response = client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "email": "ada@example.com",
                                           "password": "wrong password"})  # fmt: skip
    assert response.status_code == 401 and "Wrong email or password." in response.get_data(as_text=True)
    response = client.post(
        "/login?next=https://evil.example/",
        data={
            "csrf_token": csrf_token(client, "/login"),
            "email": "ADA@example.com",
            "password": "correct horse battery",
        },
    )
    assert response.status_code == 302 and response.location == "/dashboard/"


def test_dashboard_shows_only_your_own_sessions(app, client):
    signup(client, "one@example.com")
    form = new_session_form(csrf_token=csrf_token(client, "/dashboard/sessions/new"), title="Mine")
    location = client.post("/dashboard/sessions/new", data=form).location
    other = app.test_client()
    signup(other, "two@example.com")
    assert "Mine" not in other.get("/dashboard/").get_data(as_text=True)
    assert other.get(location).status_code == 404
    assert other.get(location + "/edit").status_code == 404
    publish = other.post(location + "/publish", data={"csrf_token": csrf_token(other, "/dashboard/")})
    assert publish.status_code == 404


def test_checkout_form_shows_field_errors(client, published_session):
    session_id, _api = published_session()
    token = csrf_token(client, f"/s/{session_id}")
    response = client.post(f"/s/{session_id}/checkout", data={"csrf_token": token, "name": "", "email": "x",
                                                              "provider": "stripe"})  # fmt: skip
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Enter your name." in page and "Enter a valid email address." in page


def test_checkout_form_redirects_to_stripe(client, published_session, fake_stripe):
    session_id, _api = published_session()
    token = csrf_token(client, f"/s/{session_id}")
    response = client.post(
        f"/s/{session_id}/checkout",
        data={"csrf_token": token, "name": "Bo", "email": "bo@example.com", "provider": "stripe"},
    )
    assert response.status_code == 303 and response.location.startswith(fake_stripe.base_url + "/pay/cs_test_")


def test_security_headers(client):
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_login_is_rate_limited(make_app, stripe_config):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute", **stripe_config)
    client = app.test_client()
    token = csrf_token(client, "/login")
    statuses = [client.post("/login", data={"csrf_token": token, "email": "a@example.com", "password": "nope"})
                .status_code for _ in range(4)]  # fmt: skip
    assert statuses == [401, 401, 401, 429]
    assert "Too many attempts" in client.post("/login", data={"csrf_token": token}).get_data(as_text=True)


def test_checkout_is_rate_limited(make_app, stripe_config, create_creator):
    from tests.conftest import Api, session_payload

    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_CHECKOUT="2 per minute", **stripe_config)
    client = app.test_client()
    api = Api(client, create_creator()[1])
    session_id = api.post("/api/v1/sessions", session_payload())[1]["id"]
    api.post(f"/api/v1/sessions/{session_id}/publish")
    buyer = {"name": "Bo", "email": "bo@example.com", "provider": "stripe"}
    statuses = [Api(client).post(f"/api/v1/sessions/{session_id}/checkout", buyer)[0] for _ in range(3)]
    assert statuses == [201, 201, 429]


def test_demo_mode_banner_and_sandbox_payment(demo_app, create_creator):
    from tests.conftest import Api, join_url, session_payload

    client = demo_app.test_client()
    api = Api(client, create_creator()[1])
    session_id = api.post("/api/v1/sessions", session_payload())[1]["id"]
    api.post(f"/api/v1/sessions/{session_id}/publish")
    page = client.get(f"/s/{session_id}").get_data(as_text=True)
    assert "Test mode" in page and 'value="sandbox"' in page and 'value="stripe"' not in page
    response = client.post(f"/s/{session_id}/checkout", data={"csrf_token": csrf_token(client, f"/s/{session_id}"),
                                                              "name": "Bo", "email": "bo@example.com",
                                                              "provider": "sandbox"})  # fmt: skip
    pay_page = response.location.replace("http://127.0.0.1:5000", "")
    assert pay_page.startswith("/sandbox/pay/")
    response = client.post(pay_page, data={"csrf_token": csrf_token(client, pay_page), "action": "pay"})
    ticket_path = response.location.split("?")[0]
    assert "You're in" in client.get(response.location).get_data(as_text=True)
    joined = client.get(join_url(demo_app, int(ticket_path.rsplit("/", 1)[1].split(".")[0])))
    assert (joined.status_code, joined.location) == (303, "https://meet.example.com/watercolour")


def test_sandbox_is_closed_when_real_keys_are_set(client, published_session):
    assert client.get("/sandbox/pay/sbx_1_abc").status_code == 404


@pytest.mark.parametrize("env_name", ["production", "staging"])
def test_the_factory_refuses_a_weak_secret_key_outside_development(env_name, database_url):
    import secrets

    from webinar_pay import create_app

    for weak in ["", "dev", "short-key", "k" * 40]:
        with pytest.raises(RuntimeError, match="SECRET_KEY"):
            create_app({"ENV_NAME": env_name, "SECRET_KEY": weak, "SQLALCHEMY_DATABASE_URI": database_url})
    create_app({"ENV_NAME": env_name, "SECRET_KEY": secrets.token_urlsafe(48), "SQLALCHEMY_DATABASE_URI": database_url,
                "STRIPE_SECRET_KEY": "sk_test_webinarpay"})  # fmt: skip


def test_profile_form_validates_and_saves(client, app):
    signup(client)
    bad = {
        "csrf_token": csrf_token(client, "/dashboard/profile"), "name": "Ada", "timezone": "Europe/Paris",
        "reply_to": "not an email", "brand_colour": "red", "logo_url": "http://insecure.example/logo.png",
    }  # fmt: skip
    response = client.post("/dashboard/profile", data=bad)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Use a colour such as #3b5bdb." in page and "https:// address of an image" in page
    good = {**bad, "reply_to": "help@ada.example", "brand_colour": "#aa3300", "logo_url": "https://ada.example/l.png"}
    assert client.post("/dashboard/profile", data=good).status_code == 302
    with app.app_context():
        creator = db.session.scalar(select(Creator))
        assert (creator.reply_to, creator.brand_colour, creator.timezone) == ("help@ada.example", "#aa3300",
                                                                             "Europe/Paris")  # fmt: skip
