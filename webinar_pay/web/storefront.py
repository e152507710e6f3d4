"""The buyer's side: upcoming sessions, a page per session, checkout, the ticket page, the demo pay page."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from .. import limits
from ..config import settings
from ..extensions import db, limiter
from ..locales import supported
from ..models import Order, OrderStatus
from ..services import ServiceError
from ..services.creators import public_creator
from ..services.discounts import DiscountCodeInvalid, Price, price_for
from ..services.enrollment import join_destination, ticket_stream
from ..services.orders import cancel_checkout, start_checkout
from ..services.outbox.compose import ticket_calendar_links, ticket_invitation
from ..services.outbox.planning import resend_tickets
from ..services.payments import provider as get_provider
from ..services.payments import providers
from ..services.paypal_checkout import buyer_returned
from ..services.personal_data import CONSENT_PURPOSES, consent_wording
from ..services.privacy import email_my_data
from ..services.refunds import self_cancel as self_cancel_service
from ..services.refunds import self_cancel_problem, self_cancel_refund
from ..services.sessions import creator_public_sessions, public_session, upcoming_sessions
from ..services.state import ConcurrentUpdate
from ..services.text import TextError, email_address
from ..services.tickets import join_token, order_for_join_token, order_for_ticket_token, ticket_token
from ..services.timezones import is_valid_timezone
from ..services.video import zoom_configured
from ..services.webhooks import handle_payment_event
from .language import current_language, order_page

bp = Blueprint("storefront", __name__)


def _checkout_limit() -> str:
    return settings().RATELIMIT_CHECKOUT


@bp.get("/")
def index():
    return render_template("storefront/index.html", sessions=upcoming_sessions())


def _render_session(session, errors=None, form=None, message=None, status=200, resend_errors=None,
                    resend_message=None, price: Price | None = None):  # fmt: skip
    return render_template(
        "storefront/session.html",
        session=session,
        providers=list(providers()),
        errors=errors or {},
        form=form or {},
        message=message,
        resend_errors=resend_errors or {},
        resend_message=resend_message,
        price=price or Price(session.price, session.currency),
        consent_choices=[(purpose, consent_wording(purpose, session)) for purpose in CONSENT_PURPOSES],
        consents_ticked=form.getlist("consents") if form else [],
    ), status


def _price_or_refusal(session, code: str | None) -> tuple[Price | None, DiscountCodeInvalid | None]:
    try:
        return price_for(session, code), None
    except DiscountCodeInvalid as refusal:
        return None, refusal


@bp.get("/s/<int:session_id>")
def session_page(session_id: int):
    """The sales page; `?code=` (a link a creator shares) applies a discount code to the price shown."""
    session = public_session(session_id)
    code = request.args.get("code", "")[:200]
    if not code or not session.is_on_sale:
        return _render_session(session)
    price, refusal = _price_or_refusal(session, code)
    form = MultiDict({"discount_code": code})
    return _render_session(session, refusal.fields if refusal else None, form, price=price)


@bp.get("/c/<slug>")
def creator_page(slug: str):
    creator = public_creator(slug)
    upcoming, past = creator_public_sessions(creator)
    return render_template("storefront/creator.html", creator=creator, upcoming=upcoming, past=past)


def _resend_limit() -> str:
    return settings().RATELIMIT_RESEND


def _resend_recipient() -> str:
    """Counts per address asked for as well as per client, so that nobody floods one inbox from many addresses."""
    return "resend:" + request.form.get("email", "")[: limits.MAX_EMAIL_LENGTH].strip().lower()


@bp.post("/s/<int:session_id>/resend")
@limiter.limit(_resend_limit)
@limiter.limit(_resend_limit, key_func=_resend_recipient)
def resend_ticket(session_id: int):
    """Send the ticket again to the address a seat was booked with. The answer is the same whether or not that
    address booked one: the page never tells who is coming."""
    session = public_session(session_id)
    try:
        email = email_address(request.form.get("email"))
    except TextError as error:
        page, status = _render_session(session, resend_errors={"resend_email": str(error)}, status=422)
        return page, status
    resend_tickets(session, email)
    message = _(
        "If a seat at this session was booked with %(email)s, its ticket is on its way there again. "
        "Check your spam folder too; it can take a few minutes.",
        email=email,
    )
    return _render_session(session, resend_message=message)


@bp.post("/s/<int:session_id>/checkout")
@limiter.limit(_checkout_limit)
def checkout(session_id: int):
    session = public_session(session_id)
    form = request.form
    # The page's language and the browser's zone come from hidden fields the buyer cannot correct: a value we do
    # not know is left out (the language of this request, no zone) rather than refusing the seat.
    zone = form.get("timezone") or None
    code = form.get("discount_code") or None
    if form.get("action") == "apply":  # the buyer asks what a code makes the price, before paying
        price, refusal = _price_or_refusal(session, code)
        if refusal:
            return _render_session(session, refusal.fields, form, None, refusal.http_status)
        return _render_session(session, None, form, price=price)
    try:
        started = start_checkout(
            session,
            form.get("name"),
            form.get("email"),
            form.get("provider") or None,
            client_address=request.remote_addr,
            locale=supported(form.get("locale")) or current_language(),
            timezone=zone if zone and is_valid_timezone(zone) else None,
            discount_code=code,
            consents=form.getlist("consents") or None,
            consent_source=url_for(".session_page", session_id=session.id),
        )
    except ServiceError as error:
        price = None if isinstance(error, DiscountCodeInvalid) else _price_or_refusal(session, code)[0]
        return _render_session(session, error.fields, form, error.message, error.http_status, price=price)
    return redirect(started.checkout_url, code=303)


def _ticket_order(token: str) -> Order:
    order = order_for_ticket_token(token)
    if order is None:
        abort(404)
    order_page(order.locale)
    return order


def _private(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/t/<token>")
def ticket(token: str):
    order = _ticket_order(token)
    if order.provider == "paypal" and request.args.get("token"):
        return paypal_return(token, order)
    page = render_template(
        "storefront/ticket.html",
        order=order,
        session=order.session,
        token=token,
        join_token=join_token(order),
        from_checkout=request.args.get("from") == "checkout",
        stream=ticket_stream(order),
        calendar=ticket_calendar_links(order) if _in_calendar(order) else None,
    )
    return _private(current_app.make_response(page))


def _in_calendar(order: Order) -> bool:
    """A seat that is paid (or free and confirmed) for a session still to come belongs in a calendar."""
    session = order.session
    return order.status == OrderStatus.PAID and session.status == "published" and not session.has_started()


@bp.get("/t/<token>/invite.ics")
def ticket_ics(token: str):
    order = _ticket_order(token)
    if not _in_calendar(order):
        abort(404)
    response = current_app.response_class(ticket_invitation(order), mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'attachment; filename="invite.ics"'
    return _private(response)


def paypal_return(token: str, order: Order):
    """PayPal sends the buyer back to the ticket page with its order id in `token`: capture, then show the ticket."""
    try:
        outcome = buyer_returned(order, request.args["token"])
    except ConcurrentUpdate:
        db.session.rollback()  # a webhook confirmed it at the same moment; the page shows the result
        outcome = "concurrent"
    # After a refused capture the page must not say that PayPal is confirming: the seat is simply still held.
    back = {} if outcome == "capture_failed" else {"from": "checkout"}
    return _private(redirect(url_for(".ticket", token=token, **back), code=303))


@bp.get("/t/<token>/status")
def ticket_status(token: str):
    order = _ticket_order(token)
    return _private(
        jsonify(
            status=order.status, hold_expires_at=order.hold_expires_at.isoformat() if order.hold_expires_at else None
        )
    )


@bp.get("/j/<token>")
def join(token: str):
    """The personal join link: its own token, which opens nothing but this redirect (never the ticket)."""
    order = order_for_join_token(token)
    if order is not None:
        order_page(order.locale)
    if order is None:
        message = _("This join link is not valid. Your personal join link is on your ticket page and in our emails.")
        return _private(current_app.make_response((render_template("error.html", message=message), 404)))
    destination = join_destination(order)
    if destination is None:
        page = render_template(
            "storefront/join_unavailable.html", order=order, session=order.session, stream=ticket_stream(order)
        )
        return _private(current_app.make_response((page, 403)))
    return _private(redirect(destination, code=303))


@bp.get("/demo/room/<registrant_id>")
def demo_room(registrant_id: str):
    """Demo mode's stand-in for a personal Zoom join page (no Zoom credentials configured)."""
    if zoom_configured(settings()):
        abort(404)
    return render_template("storefront/demo_room.html", registrant_id=registrant_id)


@bp.post("/t/<token>/release")
def release_seat(token: str):
    try:
        cancel_checkout(_ticket_order(token))
    except ConcurrentUpdate:
        db.session.rollback()  # paid or expired at this very moment: the ticket shows which
    return redirect(url_for(".ticket", token=token), code=303)


@bp.get("/t/<token>/cancelled")
def checkout_cancelled(token: str):
    """The checkout's `cancel_url`: Stripe and PayPal send a buyer who gives up here with a plain GET.

    The seat is released at once (the provider's page is closed first, so it cannot be paid after all); the token
    is the buyer's own secret, and a second visit finds the order no longer pending and changes nothing.
    """
    order = _ticket_order(token)
    if order.status == OrderStatus.PENDING:
        try:
            cancel_checkout(order)
        except ConcurrentUpdate:
            db.session.rollback()
        except ServiceError as error:
            flash(error.message)
    return _private(redirect(url_for(".ticket", token=token), code=303))


@bp.get("/t/<token>/cancel")
def confirm_self_cancel(token: str):
    """What cancelling will do (the refund, the email, the seat), for the attendee to confirm first."""
    order = _ticket_order(token)
    problem = self_cancel_problem(order)
    if problem:
        page = render_template("storefront/cancel_refused.html", message=problem, token=token)
        return _private(current_app.make_response((page, 409)))
    page = render_template(
        "storefront/cancel_confirm.html", order=order, session=order.session, token=token,
        refund=self_cancel_refund(order),
    )  # fmt: skip
    return _private(current_app.make_response(page))


@bp.post("/t/<token>/cancel")
def self_cancel(token: str):
    order = _ticket_order(token)
    if request.form.get("confirm") != "yes":  # the ticket's button leads to the confirmation, never straight here
        return redirect(url_for(".confirm_self_cancel", token=token), code=303)
    try:
        self_cancel_service(order)
    except ServiceError as error:
        page = render_template("storefront/cancel_refused.html", message=error.message, token=token)
        return _private(current_app.make_response((page, error.http_status)))
    return redirect(url_for(".ticket", token=token), code=303)


@bp.post("/t/<token>/my-data")
@limiter.limit("10 per hour")
def my_data(token: str):
    """The attendee asks for everything held about them: it is emailed to the order's address, at most once a day."""
    order = _ticket_order(token)
    email_my_data(order)
    flash(_("Everything we hold about you is on its way to %(email)s, attached to an email.", email=order.email))
    return _private(redirect(url_for(".ticket", token=token), code=303))


@bp.route("/sandbox/pay/<ref>", methods=["GET", "POST"])
def sandbox_pay(ref: str):
    """Demo mode's stand-in for a hosted checkout page; it confirms through the same path as a webhook."""
    if "sandbox" not in providers():
        abort(404)
    order = db.session.scalar(select(Order).where(Order.provider == "sandbox", Order.provider_ref == ref))
    if order is None:
        abort(404)
    order_page(order.locale)
    if request.method == "POST":
        paid = request.form.get("action") == "pay"
        event = get_provider("sandbox").payment_event(ref, order.id, order.amount, order.currency, paid=paid)
        handle_payment_event("sandbox", event)
        return redirect(
            url_for(".ticket", token=ticket_token(order), **({"from": "checkout"} if paid else {})), code=303
        )
    if order.status != OrderStatus.PENDING:
        return redirect(url_for(".ticket", token=ticket_token(order)))
    return render_template(
        "storefront/sandbox_pay.html", order=order, session=order.session, message=_("Test mode: no money moves.")
    )
