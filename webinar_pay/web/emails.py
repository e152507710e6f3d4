"""The creator's view of the emails: who was sent what and when, a resend, and a preview of each message."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..services import NotFound
from ..services.orders import creator_order
from ..services.outbox.compose import preview
from ..services.outbox.dispatch import sent_message
from ..services.outbox.kinds import CONFIRMATION, TEMPLATES
from ..services.outbox.planning import delivery_log, resend
from ..services.sessions import creator_session
from .mailbox import email_html, invitation, with_email_frame

bp = Blueprint("emails", __name__, url_prefix="/dashboard/sessions/<int:session_id>/emails")


@bp.before_request
@login_required
def require_login() -> None:
    pass


def message_label(kind: str) -> str:
    labels = {
        "confirmation": _("Confirmation"),
        "join_link": _("Join link"),
        "reminder": _("Reminder"),
        "thank_you": _("Thank you"),
        "missed_you": _("Sorry we missed you"),
        "session_moved": _("New time"),
        "cancelled": _("Cancellation"),
        "refund": _("Refund"),
        "partial_refund": _("Partial refund"),
    }
    name, _sep, minutes = kind.partition(":")
    label = labels.get(name, name)
    return _("%(label)s, %(n)s min before", label=label, n=minutes) if minutes and name == "reminder" else label


@bp.get("/")
def index(session_id: int):
    session = creator_session(current_user, session_id)
    return render_template(
        "emails/index.html",
        session=session,
        orders=session.orders,
        log=delivery_log(session),
        templates=TEMPLATES,
        message_label=message_label,
    )


@bp.post("/orders/<int:order_id>/resend")
def resend_confirmation(session_id: int, order_id: int):
    session = creator_session(current_user, session_id)
    order = creator_order(current_user.id, order_id)
    if order.session_id != session.id:
        raise NotFound(_("No such order."))
    resend(order, CONFIRMATION)
    flash(_("The confirmation will be sent again to %(email)s within a minute.", email=order.email))
    return redirect(url_for(".index", session_id=session.id))


@bp.get("/preview/<kind>")
def preview_message(session_id: int, kind: str):
    session = creator_session(current_user, session_id)
    email = preview(session, kind)
    if request.args.get("part") == "html":
        return email_html(email.html)
    page = render_template("emails/preview.html", session=session, kind=kind, email=email, label=message_label(kind))
    return with_email_frame(page)


@bp.get("/messages/<int:message_id>")
def sent(session_id: int, message_id: int):
    """A message of the delivery log as it went out to the attendee (the copy kept when it was sent)."""
    session = creator_session(current_user, session_id)
    message, email = sent_message(session, message_id)
    page = render_template(
        "emails/sent.html",
        session=session,
        message=message,
        email=email,
        label=message_label(message.kind),
        html_url=url_for(".sent_html", session_id=session.id, message_id=message.id),
        ics_url=url_for(".sent_invite", session_id=session.id, message_id=message.id),
    )
    return with_email_frame(page)


@bp.get("/messages/<int:message_id>/body.html")
def sent_html(session_id: int, message_id: int):
    _message, email = sent_message(creator_session(current_user, session_id), message_id)
    if email is None:
        raise NotFound(_("No such message."))
    return email_html(email.html)


@bp.get("/messages/<int:message_id>/invite.ics")
def sent_invite(session_id: int, message_id: int):
    _message, email = sent_message(creator_session(current_user, session_id), message_id)
    return invitation(email.ics if email else None)
