"""The dev mailbox: with no MAIL_SERVER, emails are kept as sent rows and read here instead of in an inbox.

Open to everyone only in demo mode (no payment keys either); with real payment keys and no mail server,
a creator sees the messages of their own sessions. Once MAIL_SERVER is set the page does not exist, nor in
production without `DEMO_MODE=1`.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user

from ..config import is_production
from ..models import OutboxMessage, get_by_id
from ..services.outbox.compose import compose
from ..services.outbox.dispatch import sent_messages
from ..services.payments import in_demo_mode

bp = Blueprint("mailbox", __name__, url_prefix="/dev/mailbox")

# The stored HTML of an email uses inline styles, as emails must; nothing else may run or load.
EMAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'"


def exists() -> bool:
    """No mail server and, in production, an explicit `DEMO_MODE=1`."""
    config = current_app.config
    return not config["MAIL_SERVER"] and (config["DEMO_MODE"] or not is_production(config))


def is_public() -> bool:
    """Open to every visitor: only in demo mode, where the orders are not real."""
    return exists() and in_demo_mode()


@bp.before_request
def only_without_mail_server():
    if not exists():
        abort(404)
    if not is_public() and not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    return None


def _visible(message: OutboxMessage) -> bool:
    return is_public() or message.order.session.creator_id == current_user.id


def _message(message_id: int) -> OutboxMessage:
    message = get_by_id(OutboxMessage, message_id)
    if message is None or message.status != "sent" or not _visible(message):
        abort(404)
    return message


@bp.get("/")
def index():
    messages = [message for message in sent_messages(limit=200) if _visible(message)]
    return render_template("mailbox/index.html", messages=[(m, compose(m, now=m.sent_at)) for m in messages])


def with_email_frame(page: str):
    """A page that shows an email's HTML in a sandboxed frame of our own origin."""
    from . import CONTENT_SECURITY_POLICY

    response = current_app.make_response(page)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace("frame-src ", "frame-src 'self' ")
    return response


@bp.get("/<int:message_id>")
def show(message_id: int):
    message = _message(message_id)
    email = compose(message, now=message.sent_at)
    return with_email_frame(render_template("mailbox/show.html", message=message, email=email))


@bp.get("/<int:message_id>/body.html")
def html_body(message_id: int):
    message = _message(message_id)
    response = current_app.make_response(compose(message, now=message.sent_at).html)
    response.headers["Content-Security-Policy"] = EMAIL_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.get("/<int:message_id>/invite.ics")
def invite(message_id: int):
    message = _message(message_id)
    email = compose(message, now=message.sent_at)
    if not email.ics:
        abort(404)
    response = current_app.make_response(email.ics)
    response.mimetype = "text/calendar"
    return response
