"""Configuration from the environment. The variable names are a contract (see README)."""

import os
from pathlib import Path

WEAK_SECRET_KEYS = {"", "dev", "secret", "changeme", "change-me", "development"}
MIN_SECRET_KEY_LENGTH = 32
DEV_SECRET_KEY = "dev-only-secret-key-not-for-production-use-0000"  # noqa: S105 - refused outside development and tests


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
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_LOGIN": env("RATELIMIT_LOGIN", "10 per minute"),
        "RATELIMIT_CHECKOUT": env("RATELIMIT_CHECKOUT", "20 per minute;200 per hour"),
        "SEAT_HOLD_MINUTES": _int("SEAT_HOLD_MINUTES", 30),
        "REFUND_RETRY_BASE_SECONDS": _int("REFUND_RETRY_BASE_SECONDS", 120),
    }


def check_secret_key(config: dict) -> None:
    """Refuse to run outside development and tests with a missing or guessable key."""
    key = config.get("SECRET_KEY") or ""
    if config["ENV_NAME"] in {"development", "test"}:
        if not key:
            config["SECRET_KEY"] = DEV_SECRET_KEY
        return
    if key.lower() in WEAK_SECRET_KEYS or key == DEV_SECRET_KEY or len(key) < MIN_SECRET_KEY_LENGTH:
        raise RuntimeError(
            f"SECRET_KEY is missing or weak: set it to a random string of at least {MIN_SECRET_KEY_LENGTH} "
            'characters, for instance the output of `python -c "import secrets; print(secrets.token_urlsafe(48))"`.'
        )
