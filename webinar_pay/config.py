"""Configuration from the environment. The variable names are a contract (see README)."""

import math
import os
import re
import string
from pathlib import Path

WEAK_SECRET_KEYS = {"", "dev", "secret", "changeme", "change-me", "development"}
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_DISTINCT = 10
MIN_SECRET_KEY_BITS = 160
DEV_SECRET_KEY = "dev-only-secret-key-not-for-production-use-0000"  # noqa: S105 - refused outside development and tests
KEY_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'
# Only these environments may run without a real SECRET_KEY, and run demo mode without DEMO_MODE=1.
RELAXED_ENVIRONMENTS = {"development", "test"}


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def from_environment(instance_path: str) -> dict:
    """Every setting the app reads, with the defaults of a fresh machine (demo mode, SQLite)."""
    env = os.environ.get
    default_db = "sqlite:///" + str(Path(instance_path) / "webinar_pay.sqlite3")
    return {
        "ENV_NAME": env("WEBINAR_PAY_ENV", "production"),
        "SECRET_KEY": env("SECRET_KEY", ""),
        "DEMO_MODE": _bool("DEMO_MODE", False),
        "SQLALCHEMY_DATABASE_URI": env("DATABASE_URL", default_db),
        "BASE_URL": env("BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "STRIPE_SECRET_KEY": env("STRIPE_SECRET_KEY", ""),
        "STRIPE_WEBHOOK_SECRET": env("STRIPE_WEBHOOK_SECRET", ""),
        "STRIPE_API_BASE": env("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"),
        "PAYPAL_CLIENT_ID": env("PAYPAL_CLIENT_ID", ""),
        "PAYPAL_CLIENT_SECRET": env("PAYPAL_CLIENT_SECRET", ""),
        "PAYPAL_WEBHOOK_ID": env("PAYPAL_WEBHOOK_ID", ""),
        "PAYPAL_API_BASE": env("PAYPAL_API_BASE", "https://api-m.paypal.com").rstrip("/"),
        "PAYPAL_WEBHOOK_VERIFY": env("PAYPAL_WEBHOOK_VERIFY", "offline"),
        "PAYPAL_CERT_HOSTS": env("PAYPAL_CERT_HOSTS", "api.paypal.com,api-m.paypal.com"),
        "ZOOM_ACCOUNT_ID": env("ZOOM_ACCOUNT_ID", ""),
        "ZOOM_CLIENT_ID": env("ZOOM_CLIENT_ID", ""),
        "ZOOM_CLIENT_SECRET": env("ZOOM_CLIENT_SECRET", ""),
        "ZOOM_WEBHOOK_SECRET_TOKEN": env("ZOOM_WEBHOOK_SECRET_TOKEN", ""),
        "ZOOM_API_BASE": env("ZOOM_API_BASE", "https://api.zoom.us/v2").rstrip("/"),
        "ZOOM_OAUTH_URL": env("ZOOM_OAUTH_URL", "https://zoom.us/oauth/token"),
        "ZOOM_USER_ID": env("ZOOM_USER_ID", "me"),
        "PROVIDER_CONNECT_TIMEOUT_SECONDS": _float("PROVIDER_CONNECT_TIMEOUT_SECONDS", 3.0),
        "PROVIDER_READ_TIMEOUT_SECONDS": _float("PROVIDER_READ_TIMEOUT_SECONDS", 10.0),
        "ENROLLMENT_MAX_ATTEMPTS": _int("ENROLLMENT_MAX_ATTEMPTS", 8),
        "ENROLLMENT_RETRY_SECONDS": _int("ENROLLMENT_RETRY_SECONDS", 60),
        "ENROLLMENT_RETRY_CAP_SECONDS": _int("ENROLLMENT_RETRY_CAP_SECONDS", 3600),
        "YOUTUBE_ACCESS_MINUTES": _int("YOUTUBE_ACCESS_MINUTES", 15),
        "MAIL_SERVER": env("MAIL_SERVER", ""),
        "MAIL_PORT": _int("MAIL_PORT", 25),
        "MAIL_USE_TLS": _bool("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": _bool("MAIL_USE_SSL", False),
        "MAIL_USERNAME": env("MAIL_USERNAME"),
        "MAIL_PASSWORD": env("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": env("MAIL_DEFAULT_SENDER", "webinar_pay <no-reply@localhost>"),
        "MAIL_RETRY_BASE_SECONDS": _int("MAIL_RETRY_BASE_SECONDS", 60),
        "MAIL_RETRY_MAX_SECONDS": _int("MAIL_RETRY_MAX_SECONDS", 3600),
        "MAIL_MAX_ATTEMPTS": _int("MAIL_MAX_ATTEMPTS", 8),
        "MAIL_TIMEOUT_SECONDS": _int("MAIL_TIMEOUT_SECONDS", 30),
        "OUTBOX_BATCH_SIZE": _int("OUTBOX_BATCH_SIZE", 100),
        "OUTBOX_DRAIN_SECONDS": _int("OUTBOX_DRAIN_SECONDS", 20),
        "OUTBOX_CLAIM_TIMEOUT_SECONDS": _int("OUTBOX_CLAIM_TIMEOUT_SECONDS", 600),
        "THANK_YOU_GRACE_MINUTES": _int("THANK_YOU_GRACE_MINUTES", 30),
        "SCHEDULER_ENABLED": _bool("SCHEDULER_ENABLED", True),
        "SCHEDULER_TICK_SECONDS": _int("SCHEDULER_TICK_SECONDS", 30),
        "WEBHOOK_POLL_SECONDS": _int("WEBHOOK_POLL_SECONDS", 1),
        "WEBHOOK_RETRY_BASE_SECONDS": _int("WEBHOOK_RETRY_BASE_SECONDS", 30),
        "WEBHOOK_LEASE_SECONDS": _int("WEBHOOK_LEASE_SECONDS", 60),
        "DATABASE_POOL_SIZE": _int("DATABASE_POOL_SIZE", 10),
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "RATELIMIT_STORAGE_URI": env("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_KEY_PREFIX": env("RATELIMIT_KEY_PREFIX", ""),
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_LOGIN": env("RATELIMIT_LOGIN", "10 per minute"),
        "RATELIMIT_CHECKOUT": env("RATELIMIT_CHECKOUT", "20 per minute;200 per hour"),
        "RATELIMIT_RESEND": env("RATELIMIT_RESEND", "3 per hour"),
        "SEAT_HOLD_MINUTES": _int("SEAT_HOLD_MINUTES", 30),
        "HOLDS_PER_BUYER": _int("HOLDS_PER_BUYER", 2),
        "HOLDS_PER_CLIENT": _int("HOLDS_PER_CLIENT", 5),
        # Webhooks, forms and API bodies are a few kilobytes: anything bigger is refused (413) before it is read.
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 1024 * 1024) or None,
        "REFUND_RETRY_BASE_SECONDS": _int("REFUND_RETRY_BASE_SECONDS", 120),
    }


def is_production(config: dict) -> bool:
    """Every environment but development and test is treated as production: refusals there are on purpose."""
    return config["ENV_NAME"] not in RELAXED_ENVIRONMENTS


def check_secret_key(config: dict) -> None:
    """Refuse to run outside development and tests with a missing or guessable key."""
    key = config.get("SECRET_KEY") or ""
    if not is_production(config):
        if not key:
            config["SECRET_KEY"] = DEV_SECRET_KEY
        return
    problem = secret_key_problem(key)
    if problem:
        raise RuntimeError(
            f"SECRET_KEY {problem}. Set it to a long random string, for instance the output of `{KEY_COMMAND}`"
            " (it signs sessions and ticket links: anyone who guesses it can read every attendee's ticket)."
        )


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
