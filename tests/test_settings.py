"""Settings: read once from the environment under their contract names, typed, refused at start when the app could
not use them; the tests' overrides go through the same checks; README's table lists exactly the same settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from webinar_pay import create_app
from webinar_pay.config import Settings, SettingsError, environment_name, settings

ROOT = Path(__file__).resolve().parent.parent
# Rows of README's table read by something other than the app: gunicorn.conf.py reads WEB_CONCURRENCY.
NOT_APP_SETTINGS = {"WEB_CONCURRENCY"}


@pytest.fixture
def environment(monkeypatch, tmp_path):
    """A process environment holding only what the test sets (on top of a test environment and its database)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(environment_name(name), raising=False)
    monkeypatch.setenv("WEBINAR_PAY_ENV", "test")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'settings.sqlite3'}")
    return monkeypatch


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("MAIL_PORT", "abc", "MAIL_PORT is 'abc': it expects a whole number from 1 to 65535"),
        ("TRUSTED_PROXIES", "-1", "TRUSTED_PROXIES is '-1': it expects a whole number, 0 or more"),
        ("PAYPAL_WEBHOOK_VERIFY", "maybe", "PAYPAL_WEBHOOK_VERIFY is 'maybe': it expects one of: offline, postback"),
        ("DEMO_MODE", "maybe", "DEMO_MODE is 'maybe': it expects 1 or 0 (also true/false, yes/no, on/off)"),
        ("HOLDS_PER_BUYER", "2.5", "HOLDS_PER_BUYER is '2.5': it expects a whole number, 0 or more"),
        ("PROVIDER_READ_TIMEOUT_SECONDS", "0", "PROVIDER_READ_TIMEOUT_SECONDS is '0': it expects a number above 0"),
        ("BASE_URL", "tickets.example.com", "BASE_URL is 'tickets.example.com': it expects an http:// or https://"),
        ("DATABASE_URL", "postgres ql://x", "DATABASE_URL is 'postgres ql://x': it expects a database URL"),
        ("WEBINAR_PAY_ENV", "", None),  # empty: unset, so production, which refuses the missing SECRET_KEY instead
    ],
)
def test_a_bad_value_in_the_environment_stops_the_app_at_start_naming_the_variable(environment, name, value, expected):
    environment.setenv(name, value)
    with pytest.raises(RuntimeError) as refusal:
        create_app()
    message = str(refusal.value)
    if expected is None:
        assert message.startswith("SECRET_KEY is missing")
    else:
        assert isinstance(refusal.value, SettingsError)
        assert message.startswith("Cannot start with these settings. ") and expected in message


def test_every_bad_value_is_named_at_once(environment):
    environment.setenv("MAIL_PORT", "587x")
    environment.setenv("SCHEDULER_TICK_SECONDS", "0")
    environment.setenv("MAIL_USE_TLS", "sometimes")
    with pytest.raises(SettingsError) as refusal:
        create_app()
    named = re.findall(r"([A-Z_]+) is '", str(refusal.value))
    assert sorted(named) == ["MAIL_PORT", "MAIL_USE_TLS", "SCHEDULER_TICK_SECONDS"]


def test_values_from_the_environment_reach_the_app_typed(environment):
    for name, value in {
        "WEBINAR_PAY_ENV": "development",
        "BASE_URL": "https://tickets.example.com/",
        "MAIL_SERVER": "smtp.example.com",
        "MAIL_PORT": " 587 ",
        "MAIL_USE_TLS": "yes",
        "MAIL_USERNAME": "",  # empty: unset
        "PAYPAL_CERT_HOSTS": "api.sandbox.paypal.com, api-m.sandbox.paypal.com",
        "PROVIDER_CONNECT_TIMEOUT_SECONDS": "0.5",
        "ZOOM_MAX_RETRIES": "0",
        "MAX_CONTENT_LENGTH": "0",
        "SCHEDULER_ENABLED": "off",
    }.items():
        environment.setenv(name, value)
    app = create_app()
    config = settings(app)
    assert config.ENV_NAME == "development" and config.SQLALCHEMY_DATABASE_URI.endswith("settings.sqlite3")
    assert config.BASE_URL == "https://tickets.example.com"
    assert (config.MAIL_PORT, config.MAIL_USE_TLS, config.MAIL_USERNAME) == (587, True, None)
    assert config.PAYPAL_CERT_HOSTS == ("api.sandbox.paypal.com", "api-m.sandbox.paypal.com")
    assert (config.PROVIDER_CONNECT_TIMEOUT_SECONDS, config.ZOOM_MAX_RETRIES) == (0.5, 0)
    assert config.SCHEDULER_ENABLED is False and config.DEMO_MODE is False
    # Flask and its extensions read their own keys from app.config.
    assert app.config["MAIL_PORT"] == 587 and app.config["MAX_CONTENT_LENGTH"] is None
    assert app.config["SESSION_COOKIE_SECURE"] and not app.config["MAIL_SUPPRESS_SEND"]
    assert app.test_client().get("/", base_url="https://tickets.example.com").headers["Strict-Transport-Security"]


def test_overrides_go_through_the_same_checks(environment, make_app):
    environment.setenv("MAIL_SERVER", "smtp.example.com")
    environment.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")
    app = make_app(STRIPE_API_BASE="")  # an empty override stands for the default, whatever the environment says
    assert settings(app).STRIPE_API_BASE == "https://api.stripe.com" and not settings(app).MAIL_SERVER
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES is -1: it expects a whole number, 0 or more"):
        make_app(TRUSTED_PROXIES=-1)
    with pytest.raises(SettingsError, match="PAYPAL_WEBHOOK_VERIFY is 'maybe'"):
        make_app(PAYPAL_WEBHOOK_VERIFY="maybe")
    assert settings(make_app(MAIL_PORT="2525", DEMO_MODE="1")).MAIL_PORT == 2525


def test_an_override_that_is_no_setting_is_refused_unless_flask_or_an_extension_reads_it(make_app):
    with pytest.raises(SettingsError, match="Unknown settings: ZOOM_MAX_RETRYS"):
        make_app(ZOOM_MAX_RETRYS=0)
    app = make_app(MAIL_SUPPRESS_SEND=False, WTF_CSRF_ENABLED=False)
    assert app.config["MAIL_SUPPRESS_SEND"] is False and app.config["WTF_CSRF_ENABLED"] is False


def _readme_settings() -> dict[str, str]:
    """README's settings table: each variable and its default as written (`—` for none; `a / b` for a row of two)."""
    text = (ROOT / "README.md").read_text()
    table = text.split("| variable | default | meaning |", 1)[1].split("\n\n", 1)[0]
    defaults: dict[str, str] = {}
    for row in table.strip().splitlines()[1:]:
        names_cell, default_cell, _meaning = (cell.strip() for cell in row.strip("|").split(" | ", 2))
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", names_cell)
        values = default_cell.split(" / ") if len(names) > 1 else [default_cell]
        values = values * len(names) if len(values) == 1 else values  # one default for every name of the row
        assert len(values) == len(names), f"README: {names} has defaults {values}"
        defaults.update(zip(names, (value.strip() for value in values), strict=True))
    return defaults


def _as_environment_value(written: str) -> str | None:
    """A README default as the value of its variable: `—` is unset; otherwise the first `quoted` text, or the word."""
    if written == "—":
        return None
    if written.startswith("SQLite file `"):
        return "sqlite:///" + re.search(r"`([^`]+)`", written).group(1)
    quoted = re.search(r"`([^`]+)`", written)
    return quoted.group(1) if quoted else written


def test_readme_lists_every_setting_with_its_default():
    written = _readme_settings()
    names = {environment_name(name): name for name in Settings.model_fields}
    assert set(written) - NOT_APP_SETTINGS == set(names)
    defaults = Settings.load({}, "instance")
    for variable, setting in names.items():
        value = _as_environment_value(written[variable])
        default = getattr(defaults, setting)
        if value is None:
            assert default in ("", None), f"README says {variable} has no default; it is {default!r}"
        else:
            read = getattr(Settings.load({variable: value}, "instance"), setting)
            assert read == default, f"README's default of {variable} reads as {read!r}; it is {default!r}"
