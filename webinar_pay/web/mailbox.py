"""The dev mailbox: with no MAIL_SERVER, emails are kept as sent rows (with the copy of what went out) and read
here instead of in an inbox.

Open to everyone only in demo mode (no payment keys either); with real payment keys and no mail server,
a creator sees the messages of their own sessions. Once MAIL_SERVER is set the page does not exist, nor in
production without `DEMO_MODE=1`.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, url_for
from flask_login import current_user

from ..config import is_production, settings
from ..models import OutboxMessage, get_by_id
from ..services.outbox.dispatch import sent_copy, sent_messages
from ..services.payments import in_demo_mode

bp = Blueprint("mailbox", __name__, url_prefix="/dev/mailbox")

# The stored HTML of an email uses inline styles, as emails must; nothing else may run or load.
EMAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'"


def exists() -> bool:
    """No mail server and, in production, an explicit `DEMO_MODE=1`."""
    config = settings()
    return not config.MAIL_SERVER and (config.DEMO_MODE or not is_production(config))


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
    if is_public():
        return True
    if message.order is None:  # a creator's own message
        return message.creator_id == current_user.id
    return message.order.session.creator_id == current_user.id


def _message(message_id: int) -> OutboxMessage:
    message = get_by_id(OutboxMessage, message_id)
    if message is None or message.status != "sent" or not _visible(message):
        abort(404)
    return message


@bp.get("/")
def index():
    """The newest emails as they were sent: the kept copies' subjects, nothing rendered."""
    messages = [message for message in sent_messages(limit=200) if _visible(message)]
    return render_template("mailbox/index.html", messages=messages)


def with_email_frame(page: str):
    """A page that shows an email's HTML in a sandboxed frame of our own origin."""
    from . import CONTENT_SECURITY_POLICY

    response = current_app.make_response(page)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace("frame-src ", "frame-src 'self' ")
    return response


def email_html(html: str):
    """An email's HTML for a frame of ours: its inline styles, nothing else may run or load."""
    response = current_app.make_response(html)
    response.headers["Content-Security-Policy"] = EMAIL_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def invitation(ics: str | None):
    if not ics:
        abort(404)
    response = current_app.make_response(ics)
    response.mimetype = "text/calendar"
    return response


@bp.get("/<int:message_id>")
def show(message_id: int):
    message = _message(message_id)
    page = render_template(
        "mailbox/show.html",
        message=message,
        email=sent_copy(message),
        html_url=url_for(".html_body", message_id=message.id),
        ics_url=url_for(".invite", message_id=message.id),
    )
    return with_email_frame(page)


@bp.get("/<int:message_id>/body.html")
def html_body(message_id: int):
    email = sent_copy(_message(message_id))
    if email is None:
        abort(404)
    return email_html(email.html)


@bp.get("/<int:message_id>/invite.ics")
def invite(message_id: int):
    email = sent_copy(_message(message_id))
    return invitation(email.ics if email else None)
