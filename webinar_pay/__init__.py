"""webinar_pay: sell seats to live online sessions."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings, is_production, load_settings, settings
from .extensions import csrf, db, limiter, login_manager, mail, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    config, flask_keys = load_settings(app.instance_path, test_config)
    app.extensions["webinar_pay.settings"] = config
    # Flask and its extensions read their keys from app.config: every setting is copied there, read-only by
    # convention (the app's code reads `settings()`).
    app.config.update(config.flask_config())
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.BASE_URL.startswith("https://"),
        REMEMBER_COOKIE_SECURE=config.BASE_URL.startswith("https://"),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_DURATION=timedelta(days=30),  # only when "keep me logged in" is ticked
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(config),
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
        WTF_CSRF_TIME_LIMIT=None,
        MAIL_SUPPRESS_SEND=not config.MAIL_SERVER,
    )
    app.config.update(flask_keys)
    if config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    proxies = config.TRUSTED_PROXIES
    if proxies:
        # Only the headers our own proxies set are believed: each proxy appends one address to X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies)

    db.init_app(app)
    from .models import render_migration_item

    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"), render_item=render_migration_item)
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"

    from .services.payments import build_providers, check_demo_mode

    app.extensions["webinar_pay.providers"] = build_providers(config)
    check_demo_mode(config, app.extensions["webinar_pay.providers"])

    from . import cli, web

    web.init_app(app)
    cli.init_app(app)
    _configure_logging(app)
    _warn_about_process_local_limits(app)
    _warn_about_demo_mode(app)
    _warn_about_stale_catalogues()
    return app


def stale_catalogues() -> list[Path]:
    """The translation catalogues (.po) whose compiled form (.mo, which the app reads) is missing or older."""
    stale = []
    for source in sorted((Path(__file__).parent / "translations").glob("*/LC_MESSAGES/messages.po")):
        compiled = source.with_suffix(".mo")
        if not compiled.exists() or compiled.stat().st_mtime < source.stat().st_mtime:
            stale.append(source)
    return stale


def _warn_about_stale_catalogues() -> None:
    for source in stale_catalogues():
        logging.getLogger(__name__).warning(
            "%s is not compiled, or changed since: its language shows old or English text. Run `make translations` "
            "(or `pybabel compile -d webinar_pay/translations`).",
            source.relative_to(ROOT),
        )


def _warn_about_process_local_limits(app: Flask) -> None:
    if is_production(settings(app)) and settings(app).RATELIMIT_STORAGE_URI.startswith("memory://"):
        logging.getLogger(__name__).warning(
            "RATELIMIT_STORAGE_URI is memory://: each process counts log-ins and checkouts on its own, so with "
            "several gunicorn workers or machines the limits multiply. Set it to redis://host:6379."
        )


def _warn_about_demo_mode(app: Flask) -> None:
    from .services.payments import is_demo_mode

    if is_production(settings(app)) and is_demo_mode(app.extensions["webinar_pay.providers"]):
        logging.getLogger(__name__).warning(
            "DEMO MODE (DEMO_MODE=1, no payment keys): orders are marked paid by a test payment page without any "
            "money, and /dev/mailbox/ shows every attendee's emails, with their ticket and join links, to anyone. "
            "Set the Stripe or PayPal keys and unset DEMO_MODE before selling real seats."
        )


POOL_TIMEOUT_SECONDS = 10


def _engine_options(config: Settings) -> dict[str, Any]:
    """Each process keeps at most DATABASE_POOL_SIZE connections (so that gunicorn's workers together stay under
    PostgreSQL's `max_connections`), and a request that finds none free for POOL_TIMEOUT_SECONDS fails rather than
    queueing behind the others indefinitely. A request holds its connection only around its own statements, never
    across a provider's call (every service commits first), so this is a few per worker, not one per request."""
    url = make_url(config.SQLALCHEMY_DATABASE_URI)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return {"connect_args": {"timeout": 30}}  # an in-memory database has one connection, no pool to size
    options = {"pool_size": config.DATABASE_POOL_SIZE, "max_overflow": 0, "pool_timeout": POOL_TIMEOUT_SECONDS}
    if url.get_backend_name() == "sqlite":
        return {**options, "connect_args": {"timeout": 30}}
    return {**options, "pool_pre_ping": True}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL lets readers go on while one writer writes; the busy timeout makes writers queue, not fail."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _configure_logging(app: Flask) -> None:
    """INFO to stderr outside debug and tests; in every mode, ticket and join tokens are redacted from the lines
    of the app, its libraries (through the root handlers) and Werkzeug's development server (`webinar_pay.logs`)."""
    from flask.logging import default_handler

    from . import logs

    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("stripe").setLevel(logging.WARNING)  # it logs every request at INFO
        logs.install(logging.getLogger().handlers)
    logs.install([app.logger, default_handler, logging.getLogger("werkzeug")])
