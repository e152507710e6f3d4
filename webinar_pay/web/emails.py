"""The creator's view of the emails: who was sent what and when, a resend, and a preview of each message."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..services import NotFound
from ..services.orders import creator_order
from ..services.outbox.compose import preview
from ..services.outbox.kinds import CONFIRMATION, TEMPLATES
from ..services.outbox.planning import delivery_log, resend
from ..services.sessions import creator_session
from .mailbox import with_email_frame

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
    }
    name, _sep, minutes = kind.partition(":")
    label = labels.get(name, name)
    return _("%(label)s, %(n)s min before", label=label, n=minutes) if minutes else label


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
        response = current_app.make_response(email.html)
        from .mailbox import EMAIL_CSP

        response.headers["Content-Security-Policy"] = EMAIL_CSP
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response
    page = render_template("emails/preview.html", session=session, kind=kind, email=email, label=message_label(kind))
    return with_email_frame(page)
