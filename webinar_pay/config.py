"""Configuration from the environment, read once into a typed `Settings`. The variable names are a contract
(see README)."""

from __future__ import annotations

import math
import os
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from flask import Flask, current_app
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

WEAK_SECRET_KEYS = {"", "dev", "secret", "changeme", "change-me", "development"}
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_DISTINCT = 10
MIN_SECRET_KEY_BITS = 160
DEV_SECRET_KEY = "dev-only-secret-key-not-for-production-use-0000"  # noqa: S105 - refused outside development and tests
KEY_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
# Only these environments may run without a real SECRET_KEY, and run demo mode without DEMO_MODE=1.
RELAXED_ENVIRONMENTS = {"development", "test"}
# The settings whose environment variable has another name than the setting (the names Flask-SQLAlchemy and the
# app read); every other setting is read from the variable of its own name.
ENVIRONMENT_NAMES = {"ENV_NAME": "WEBINAR_PAY_ENV", "SQLALCHEMY_DATABASE_URI": "DATABASE_URL"}
# Keys that `create_app`'s overrides may set besides the settings: Flask's and its extensions' own (TESTING,
# MAIL_SUPPRESS_SEND, WTF_CSRF_ENABLED…), copied into app.config as they are.
EXTENSION_PREFIXES = ("SQLALCHEMY_", "WTF_", "BABEL_", "MAIL_", "RATELIMIT_", "SESSION_", "REMEMBER_")
DATABASE_FILE = "webinar_pay.sqlite3"


class SettingsError(RuntimeError):
    """A setting the app cannot run with; the message names each variable and what it expects."""


def _web_address(value: str) -> str:
    if not re.match(r"https?://[^/\s]+", value) or any(char.isspace() for char in value):
        raise ValueError("an http:// or https:// address, such as https://tickets.example.com")
    return value.rstrip("/")


def _database_url(value: str) -> str:
    try:
        make_url(value)
    except (ArgumentError, ValueError):
        raise ValueError("a database URL, such as postgresql+psycopg://user:password@host/dbname") from None
    return value


def _hosts(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(host.strip() for host in value.split(",") if host.strip())
    return value


WebAddress = Annotated[str, AfterValidator(_web_address)]
Count = Annotated[int, Field(ge=0)]  # 0 is meaningful: no retries, no limit…
Positive = Annotated[int, Field(ge=1)]
Seconds = Annotated[float, Field(gt=0)]
Delay = Annotated[float, Field(ge=0)]
Port = Annotated[int, Field(ge=1, le=65535)]
Hosts = Annotated[tuple[str, ...], BeforeValidator(_hosts)]


class Settings(BaseModel):
    """Every setting the app reads, with its type and the default of a fresh machine (demo mode, SQLite).

    Read once by `create_app` (the environment, then the caller's overrides, all validated the same way); code
    reads `settings().NAME`. README's settings table lists the same names and defaults (a test compares them).
    SQLALCHEMY_DATABASE_URI (`DATABASE_URL`) has no fixed default: a SQLite file in the app's instance folder.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ENV_NAME: str = "production"
    SECRET_KEY: str = ""
    DEMO_MODE: bool = False
    SQLALCHEMY_DATABASE_URI: Annotated[str, AfterValidator(_database_url)]
    BASE_URL: WebAddress = "http://127.0.0.1:5000"
    STRIPE_SECRET_KEY: str = ""
    STRIPE_WEBHOOK_SECRET: str = ""
    STRIPE_API_BASE: WebAddress = "https://api.stripe.com"
    STRIPE_MAX_NETWORK_RETRIES: Count = 2
    PAYPAL_CLIENT_ID: str = ""
    PAYPAL_CLIENT_SECRET: str = ""
    PAYPAL_WEBHOOK_ID: str = ""
    PAYPAL_API_BASE: WebAddress = "https://api-m.paypal.com"
    PAYPAL_WEBHOOK_VERIFY: Literal["offline", "postback"] = "offline"
    PAYPAL_CERT_HOSTS: Hosts = ("api.paypal.com", "api-m.paypal.com")
    ZOOM_ACCOUNT_ID: str = ""
    ZOOM_CLIENT_ID: str = ""
    ZOOM_CLIENT_SECRET: str = ""
    ZOOM_WEBHOOK_SECRET_TOKEN: str = ""
    ZOOM_API_BASE: WebAddress = "https://api.zoom.us/v2"
    ZOOM_OAUTH_URL: WebAddress = "https://zoom.us/oauth/token"
    ZOOM_USER_ID: Annotated[str, Field(min_length=1)] = "me"
    ZOOM_MAX_RETRIES: Count = 3
    ZOOM_RETRY_BACKOFF_SECONDS: Delay = 1.0
    ZOOM_MAX_RETRY_SLEEP_SECONDS: Delay = 30.0
    PROVIDER_CONNECT_TIMEOUT_SECONDS: Seconds = 3.0
    PROVIDER_READ_TIMEOUT_SECONDS: Seconds = 10.0
    ENROLLMENT_MAX_ATTEMPTS: Positive = 8
    ENROLLMENT_RETRY_SECONDS: Positive = 60
    ENROLLMENT_RETRY_CAP_SECONDS: Positive = 3600
    YOUTUBE_ACCESS_MINUTES: Count = 15
    MAIL_SERVER: str = ""
    MAIL_PORT: Port = 25
    MAIL_USE_TLS: bool = False
    MAIL_USE_SSL: bool = False
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER: str = "webinar_pay <no-reply@localhost>"
    MAIL_RETRY_BASE_SECONDS: Positive = 60
    MAIL_RETRY_MAX_SECONDS: Positive = 3600
    MAIL_MAX_ATTEMPTS: Positive = 8
    MAIL_TIMEOUT_SECONDS: Positive = 30
    OUTBOX_BATCH_SIZE: Positive = 100
    OUTBOX_DRAIN_SECONDS: Positive = 20
    OUTBOX_CLAIM_TIMEOUT_SECONDS: Positive = 600
    THANK_YOU_GRACE_MINUTES: Count = 30
    SCHEDULER_ENABLED: bool = True
    SCHEDULER_TICK_SECONDS: Positive = 30
    WEBHOOK_POLL_SECONDS: Positive = 1
    WEBHOOK_RETRY_BASE_SECONDS: Positive = 30
    WEBHOOK_LEASE_SECONDS: Positive = 60
    DATABASE_POOL_SIZE: Positive = 10
    TRUSTED_PROXIES: Count = 0
    RATELIMIT_STORAGE_URI: str = "memory://"
    RATELIMIT_KEY_PREFIX: str = ""
    RATELIMIT_ENABLED: bool = True
    RATELIMIT_LOGIN: str = "10 per minute"
    RATELIMIT_CHECKOUT: str = "20 per minute;200 per hour"
    TOTP_ISSUER: Annotated[str, Field(min_length=1, max_length=100)] = "webinar_pay"
    SEAT_HOLD_MINUTES: Positive = 30
    HOLDS_PER_BUYER: Count = 2
    HOLDS_PER_CLIENT: Count = 5
    ATTENDEE_RETENTION_DAYS: Count = 730  # 0: attendees are kept until erased by hand
    # Webhooks, forms and API bodies are a few kilobytes: anything bigger is refused (413) before it is read.
    MAX_CONTENT_LENGTH: Count = 1024 * 1024
    REFUND_RETRY_BASE_SECONDS: Positive = 120

    @classmethod
    def load(
        cls, environ: Mapping[str, str], instance_path: str, overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        """The settings from `environ`, then `overrides` (keyed by setting name, as the tests pass them); an empty
        value stands for the default in both. Refused with a `SettingsError` naming every bad variable."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            value = environ.get(environment_name(name))
            if not _blank(value):
                values[name] = value
        for name, value in (overrides or {}).items():
            if _blank(value):
                values.pop(name, None)  # the default, whatever the environment says
            else:
                values[name] = value
        values.setdefault("SQLALCHEMY_DATABASE_URI", "sqlite:///" + str(Path(instance_path) / DATABASE_FILE))
        try:
            return cls(**values)
        except ValidationError as error:
            raise SettingsError(_explain(error, values)) from None

    def flask_config(self) -> dict[str, Any]:
        """The settings as Flask and its extensions read them from app.config (Flask-Mail's MAIL_*,
        Flask-Limiter's RATELIMIT_*, Flask-SQLAlchemy's URI, Flask's MAX_CONTENT_LENGTH where 0 means none)."""
        return {**self.model_dump(), "MAX_CONTENT_LENGTH": self.MAX_CONTENT_LENGTH or None}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def environment_name(name: str) -> str:
    """The environment variable a setting is read from."""
    return ENVIRONMENT_NAMES.get(name, name)


def _explain(error: ValidationError, values: Mapping[str, Any]) -> str:
    problems = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        if name not in Settings.model_fields:
            problems.append(problem["msg"])
            continue
        shown = "is not set" if name not in values else f"is {values[name]!r}"
        problems.append(f"{environment_name(name)} {shown}: it expects {_expectation(name, problem)}")
    return "Cannot start with these settings. " + "; ".join(problems) + "."


def _expectation(name: str, problem: dict) -> str:
    if problem["type"] == "value_error":
        return str(problem["ctx"]["error"])
    field = Settings.model_fields[name]
    kind = field.annotation
    if kind is bool:
        return "1 or 0 (also true/false, yes/no, on/off)"
    if get_origin(kind) is Literal:
        return "one of: " + ", ".join(get_args(kind))
    if kind not in (int, float):
        return "a value that is not empty"
    low, above, high = (
        next((getattr(m, bound) for m in field.metadata if hasattr(m, bound)), None) for bound in ("ge", "gt", "le")
    )
    words = "a whole number" if kind is int else "a number"
    if low is not None and high is not None:
        return f"{words} from {low} to {high}"
    if low is not None:
        return f"{words}, {low} or more"
    if above is not None:
        return f"{words} above {above}"
    return words


def load_settings(instance_path: str, overrides: Mapping[str, Any] | None = None) -> tuple[Settings, dict[str, Any]]:
    """The app's settings from the environment and `overrides`, refused when a value is bad or the SECRET_KEY
    guessable; and the overrides that are Flask's or an extension's own keys, for app.config."""
    overrides = dict(overrides or {})
    extra = {key: value for key, value in overrides.items() if key not in Settings.model_fields}
    unknown = sorted(key for key in extra if key not in Flask.default_config and not key.startswith(EXTENSION_PREFIXES))
    if unknown:
        raise SettingsError(f"Unknown settings: {', '.join(unknown)} (README lists every setting).")
    settings = Settings.load(os.environ, instance_path, {k: v for k, v in overrides.items() if k not in extra})
    return check_secret_key(settings), extra


def settings(app: Flask | None = None) -> Settings:
    """The settings of `app`, or of the app handling the current request, job or command."""
    return (app or current_app).extensions["webinar_pay.settings"]


def is_production(settings: Settings) -> bool:
    """Every environment but development and test is treated as production: refusals there are on purpose."""
    return settings.ENV_NAME not in RELAXED_ENVIRONMENTS


def check_secret_key(settings: Settings) -> Settings:
    """Refuse to run outside development and tests with a missing or guessable key; there, a missing one is
    replaced by a fixed development key."""
    key = settings.SECRET_KEY
    if not is_production(settings):
        return settings if key else settings.model_copy(update={"SECRET_KEY": DEV_SECRET_KEY})
    problem = secret_key_problem(key)
    if problem:
        raise RuntimeError(
            f"SECRET_KEY {problem}. Set it to a long random string, for instance the output of `{KEY_COMMAND}`"
            " (it signs sessions and ticket links: anyone who guesses it can read every attendee's ticket)."
        )
    return settings


def secret_key_problem(key: str) -> str | None:
    """Why `key` is not fit to sign anything in production, in words for the operator; None when it is."""
    if not key:
        return "is missing"
    if key.lower() in WEAK_SECRET_KEYS or key == DEV_SECRET_KEY:
        return "is a well-known placeholder"
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"is {len(key)} characters long; it needs at least {MIN_SECRET_KEY_LENGTH}"
    if _repeated_unit(key):
        return "repeats a short pattern"
    if len(set(key)) < MIN_SECRET_KEY_DISTINCT:
        return f"uses only {len(set(key))} different characters"
    bits = secret_key_bits(key)
    if bits < MIN_SECRET_KEY_BITS:
        return (
            f"does not look random: words, sequences or repeats give it an estimated {bits:.0f} bits of strength,"
            f" and it needs {MIN_SECRET_KEY_BITS}"
        )
    return None


def _repeated_unit(key: str) -> bool:
    return any(key == (key[:size] * (len(key) // size + 1))[: len(key)] for size in range(1, len(key) // 2 + 1))


# -- how guessable a key is ------------------------------------------------------------------------------------
# A conservative estimate in the manner of password-strength meters: the key is read left to right, and each
# stretch costs the bits an attacker who knows the usual human patterns would need to guess it. Repeats of earlier
# text, runs of one character and alphabet or keyboard sequences cost a few bits whatever their length; lowercase,
# capitalised or uppercase letter groups that read like words cost 2 bits a letter (English text carries less);
# everything else costs what a random character of its class does. Random keys from `secrets` score far above the
# threshold (token_urlsafe(48) about 290, token_hex(32) about 250); words, dates and patterns score far below it.

_LETTERS = frozenset(string.ascii_letters)
_VOWELS = frozenset("aeiouy")
_TOKEN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+|[^A-Za-z0-9]")
_KEYBOARD_ROWS = ("`1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./")
_KEY_POSITION = {char: (row, column) for row, keys in enumerate(_KEYBOARD_ROWS) for column, char in enumerate(keys)}
_PATTERN_BITS = 4.0
_BOUNDARY_BITS = 1.0
_WORD_LETTER_BITS = 2.0


def secret_key_bits(key: str) -> float:
    """Estimated bits an attacker must guess to find `key` (an underestimate for truly random keys). Only the first
    256 characters are read: far more than enough to pass, and the work stays small whatever the key's length."""
    key = key[:256]
    total, i, symbols_seen = 0.0, 0, set()
    while i < len(key):
        pattern = _pattern_length(key, i)
        if pattern:
            total += _PATTERN_BITS
            i += pattern
            continue
        token = _TOKEN.match(key, i).group()
        token = next((token[:j] for j in range(1, len(token)) if _pattern_length(key, i + j)), token)
        if token[0] in _LETTERS:
            cost = _WORD_LETTER_BITS * len(token) if _reads_like_a_word(token) else len(token) * math.log2(26)
        elif token[0] in string.digits:
            cost = len(token) * math.log2(10)
        else:
            cost = 2.0 if token in symbols_seen else math.log2(33)
            symbols_seen.add(token)
        total += cost + _BOUNDARY_BITS
        i += len(token)
    return total


def _steps(a: str, b: str) -> set[tuple[str, int]]:
    """How `b` follows `a`: the same character, the next or previous one, or a neighbouring key on the keyboard."""
    steps = set()
    if ord(b) - ord(a) in (-1, 0, 1):
        steps.add(("alphabet", ord(b) - ord(a)))
    here, there = _KEY_POSITION.get(a.lower()), _KEY_POSITION.get(b.lower())
    if here and there and here[0] == there[0] and abs(here[1] - there[1]) == 1:
        steps.add(("keyboard", there[1] - here[1]))
    return steps


def _pattern_length(key: str, i: int) -> int:
    """Length of the predictable stretch starting at `i` (a sequence or a repeat of earlier text), 0 under 3."""
    sequence = 1
    if i + 1 < len(key):
        steps = _steps(key[i], key[i + 1])
        if steps:
            sequence = 2
            while i + sequence < len(key):
                steps &= _steps(key[i + sequence - 1], key[i + sequence])
                if not steps:
                    break
                sequence += 1
    repeat = 0
    for start in range(i):
        n = 0
        while i + n < len(key) and key[start + n] == key[i + n]:
            n += 1
        repeat = max(repeat, n)
    longest = max(sequence, repeat)
    return longest if longest >= 3 else 0


def _reads_like_a_word(letters: str) -> bool:
    """Pronounceable: enough vowels, no long cluster of consonants or of vowels."""
    lower = letters.lower()
    if len(lower) < 3:
        return False
    vowels = sum(char in _VOWELS for char in lower)
    return vowels * 4 >= len(lower) and not re.search(r"[^aeiouy]{4}|[aeiouy]{3}", lower)
