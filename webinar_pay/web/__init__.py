"""Web blueprints: storefront (buyers), dashboard (creators), auth, JSON API, webhooks."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_format_datetime
from babel.dates import get_timezone_name
from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from markupsafe import Markup

from .. import limits
from ..config import settings
from ..extensions import babel, db, login_manager
from ..models import Creator, get_by_id
from ..money import format_amount
from ..services import ServiceError
from ..services.text import status_label
from .language import current_language

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-src https://www.youtube-nocookie.com https://www.youtube.com; "
    "frame-ancestors 'none'; form-action 'self' https:; base-uri 'none'; object-src 'none'"
)


def format_in_zone(moment: datetime, zone: str, fmt: str = "full") -> str:
    """A UTC instant as people in `zone` read it, in the visitor's language.

    Never fails a page: an instant the zone cannot show (at the calendar's edge) or an unknown zone is shown in UTC.
    """
    locale = current_language()
    pattern = "EEEE d MMMM y, HH:mm" if fmt == "full" else "d MMM y, HH:mm"
    try:
        text = babel_format_datetime(moment, pattern, tzinfo=ZoneInfo(zone), locale=locale)
        return f"{text} ({get_timezone_name(ZoneInfo(zone), 'short', locale=locale, return_zone=False)})"
    except (OverflowError, ValueError, LookupError):
        return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def html_datetime(moment: datetime) -> str:
    """The value of a `<time datetime>` attribute: a UTC instant to the second (HTML allows at most milliseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def html_attributes(attributes: dict) -> Markup:
    """Jinja's xmlattr with HTML's boolean attributes: `required=True` is written `required`; False is left out."""
    parts = []
    for name, value in sorted(attributes.items()):
        if value is True:
            parts.append(Markup(" {}").format(name))
        elif value is not False and value is not None:
            parts.append(Markup(' {}="{}"').format(name, value))
    return Markup("").join(parts)


def money(minor: int, currency: str) -> str:
    return format_amount(minor, currency, locale=current_language())


def platform_label(platform: str) -> str:
    return {"zoom": "Zoom", "youtube": _("YouTube live stream"), "link": _("A link I provide")}.get(platform, platform)


class ChunkedBodyLimit:
    """MAX_CONTENT_LENGTH for chunked bodies too (no Content-Length), which Werkzeug cuts off at the limit in silence.

    Such a body is read here up to the limit and one byte more, never further. Within the limit it goes on with its
    length, as a body that declared it; past it, it is declared one byte too long, which Werkzeug refuses with 413
    at the first read, exactly as a declared body that is too large, before anything parses it.
    """

    def __init__(self, wsgi_app, limit: int) -> None:
        self.wsgi_app = wsgi_app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response):
        if self.limit and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():  # a Content-Length is moot
            data = _read_at_most(environ["wsgi.input"], self.limit + 1)
            del environ["HTTP_TRANSFER_ENCODING"]  # the body is de-chunked now; a chunked request's length is ignored
            environ["CONTENT_LENGTH"] = str(len(data))
            if len(data) <= self.limit:
                environ["wsgi.input"] = io.BytesIO(data)
        return self.wsgi_app(environ, start_response)


def _read_at_most(stream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        part = stream.read(min(size - len(data), 64 * 1024))
        if not part:
            break
        data += part
    return bytes(data)


def init_app(app: Flask) -> None:
    from ..services.payments import in_demo_mode
    from ..services.refunds import can_self_cancel, cancellation_deadline

    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, settings(app).MAX_CONTENT_LENGTH or 0)
    from . import (
        account,
        account_deletion,
        api,
        auth,
        dashboard,
        emails,
        health,
        language,
        mailbox,
        storefront,
        webhooks,
    )

    babel.init_app(app, locale_selector=language.page_locale)
    modules = (storefront, auth, account, dashboard, api, webhooks, emails, mailbox, health, language, account_deletion)
    for module in modules:
        app.register_blueprint(module.bp)
    app.add_template_global(format_in_zone)
    app.add_template_filter(html_datetime)
    app.add_template_filter(html_attributes)
    app.add_template_global(money)
    app.add_template_global(can_self_cancel)
    app.add_template_global(cancellation_deadline)
    app.add_template_global(language.current_language)
    app.add_template_global(language.language_links)
    app.add_template_global(status_label)
    app.add_template_global(platform_label)
    app.add_template_global(limits, "limits")  # the forms' maxlength, min and max

    @app.context_processor
    def demo_mode_banner() -> dict:
        return {"in_demo_mode": in_demo_mode(), "public_mailbox": mailbox.is_public()}

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if settings(app).BASE_URL.startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    @app.before_request
    def start_dev_scheduler() -> None:
        # Only the development server runs the ticks in-process; production runs `flask worker`.
        if settings(app).SCHEDULER_ENABLED and request.environ.get("SERVER_SOFTWARE", "").startswith("Werkzeug"):
            from ..scheduler import start_in_process

            start_in_process(app)

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        if _wants_json():
            return error_response(error.code, error.message, error.http_status, error.fields)
        return render_template("error.html", message=error.message), error.http_status

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        message = _("This form has expired. Go back, reload the page and try again.")
        return render_template("error.html", message=message), 400

    @app.errorhandler(404)
    def not_found(error):
        if _wants_json():
            return error_response("not_found", _("Not found."), 404)
        return render_template("error.html", message=_("This page does not exist.")), 404

    @app.errorhandler(405)
    def method_not_allowed(error):
        message = _("This method is not allowed here.")
        if _wants_json():
            response, status = error_response("method_not_allowed", message, 405)
        else:
            response, status = app.make_response(render_template("error.html", message=message)), 405
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods or ()))  # RFC 9110: what is allowed
        return response, status

    @app.errorhandler(500)
    def internal_error(error):
        db.session.rollback()
        message = _("Something went wrong on our side. Nothing was charged twice; please try again.")
        if _wants_json():
            return error_response("internal_error", message, 500)
        return render_template("error.html", message=message), 500

    @app.errorhandler(413)
    def too_large(error):
        limit = settings(app).MAX_CONTENT_LENGTH
        message = (
            _("This request is too large: at most %(kib)d KiB are accepted.", kib=limit // 1024)
            if limit
            else _("This request is too large.")
        )
        if _wants_json():
            return error_response("too_large", message, 413)
        return render_template("error.html", message=message), 413

    @app.errorhandler(429)
    def too_many(error):
        message = _("Too many attempts. Please wait a minute and try again.")
        if _wants_json():
            return error_response("rate_limited", message, 429)
        return render_template("error.html", message=message), 429


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/")) or request.accept_mimetypes.best == "application/json"


def error_response(code: str, message: str, status: int, fields: dict | None = None):
    body = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    return jsonify(body), status


@login_manager.user_loader
def load_creator(user_id: str) -> Creator | None:
    """The creator of a login cookie (`Creator.get_id`: "<id>:<session version>"), only while their session version
    is still the one the cookie was issued with: logging out, a new password or "log out everywhere" raise it.
    A cookie from before versions existed holds the id alone, which stands for version 0."""
    creator_id, _sep, version = user_id.partition(":")
    version = version or "0"
    if not (creator_id.isascii() and creator_id.isdigit() and version.isascii() and version.isdigit()):
        return None
    if len(creator_id) > 10 or len(version) > 10:
        return None
    creator = get_by_id(Creator, int(creator_id))
    if creator is None or creator.deleted_at is not None:  # a deleted account logs nobody in
        return None
    return creator if creator.session_version == int(version) else None
