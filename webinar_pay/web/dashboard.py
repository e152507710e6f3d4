"""The creator's side: their sessions, who bought a seat, and the forms to change them."""

from __future__ import annotations

import secrets
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..locales import LANGUAGE_NAMES
from ..models import LiveSession
from ..money import MoneyError, major_input_value, normalize_currency, to_minor
from ..services import ServiceError, ValidationError
from ..services.accounts import EmailNotVerified
from ..services.creators import update_profile
from ..services.discounts import create_code, creator_code, creator_codes, delete_code
from ..services.enrollment import failed_enrollments, retry_enrollment, retry_failed_enrollments
from ..services.orders import creator_order
from ..services.personal_data import attendee_orders, export_json
from ..services.privacy import erase_attendee, erasure_date, retention_days
from ..services.refunds import (
    cancel_session,
    preview_cancellation,
    preview_refund,
    refund_progress,
    refunded_so_far,
    retry_refund,
)
from ..services.refunds import refund_order as refund_order_service
from ..services.schemas import DEFAULT_REMINDER_OFFSETS, SESSION_FIELDS
from ..services.sessions import (
    create_session,
    creator_dashboard,
    creator_session,
    creator_sessions,
    publish_session,
    update_session,
)
from ..services.tickets import join_token
from ..services.timezones import all_timezones
from . import language, money

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


@bp.before_request
@login_required
def require_login() -> None:
    pass


INTEGER_FIELDS = ("duration_minutes", "capacity", "cancellation_hours")


def _whole_number(text: str) -> int | str:
    """'90' -> 90; anything else stays text, which the service refuses with its own message."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else text


def _form_to_fields(form) -> tuple[dict, dict[str, str]]:
    """What the form sends, as the service takes it (JSON values): an empty box is a field left unset, numbers are
    numbers, the currency any case, reminders a list, and the price typed as people write it ('25.00') in minor
    units."""
    raw = {name: form.get(name, "").strip() or None for name in SESSION_FIELDS if name in form}
    errors = {}
    for name in INTEGER_FIELDS:
        if raw.get(name):
            raw[name] = _whole_number(raw[name])
    if raw.get("reminder_offsets_minutes"):
        parts = [part.strip() for part in raw["reminder_offsets_minutes"].replace(";", ",").split(",") if part.strip()]
        offsets = [_whole_number(part) for part in parts]
        if all(isinstance(offset, int) for offset in offsets):
            raw["reminder_offsets_minutes"] = offsets
    if raw.get("currency"):
        try:
            raw["currency"] = normalize_currency(raw["currency"])
        except MoneyError:
            pass  # refused by the service along with any other mistake
    if "price" in raw:
        try:
            raw["price"] = to_minor(raw["price"] or "0", normalize_currency(form.get("currency", "")))
        except MoneyError as error:
            # The raw text stays, so the service refuses it along with any other mistake.
            errors["price"] = str(error) if raw.get("currency") else _("Choose the currency first.")
    return raw, errors


def _form_values(session: LiveSession | None) -> dict:
    if session is None:
        return {
            "timezone": current_user.timezone,
            "currency": "EUR",
            "duration_minutes": 60,
            "capacity": 50,
            "platform": "link",
            "zoom_kind": "meeting",
            "reminder_offsets_minutes": ", ".join(map(str, DEFAULT_REMINDER_OFFSETS)),
            "price": "0",
        }
    values = {name: getattr(session, name, "") or "" for name in SESSION_FIELDS}
    try:
        local_start = session.starts_at.astimezone(ZoneInfo(session.timezone))
    except OverflowError:  # a start near the end of the calendar, stored before starts were bounded
        local_start = session.starts_at
    values["starts_at"] = local_start.strftime("%Y-%m-%dT%H:%M")
    values["price"] = major_input_value(session.price, session.currency)
    values["reminder_offsets_minutes"] = ", ".join(str(m) for m in session.reminder_offsets)
    values["cancellation_hours"] = "" if session.cancellation_hours is None else session.cancellation_hours
    return values


def _render_form(session: LiveSession | None, values: dict, errors: dict, status: int = 200):
    return render_template(
        "dashboard/session_form.html", session=session, values=values, errors=errors, timezones=all_timezones()
    ), status


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            update_profile(current_user, request.form)
        except ServiceError as error:  # a refusal, or Zoom unreachable while checking the Zoom user (503)
            errors, status = error.fields or {"form": error.message}, error.http_status
        else:
            # The account's language becomes the pages' too (the switch's cookie says so), from this very message.
            with force_locale(current_user.locale):
                flash(_("Profile saved."))
            return language.remember(redirect(url_for(".profile")), current_user.locale)
    values = request.form if errors else {
        "name": current_user.name, "timezone": current_user.timezone, "locale": current_user.locale,
        "reply_to": current_user.reply_to or "",
        "brand_colour": current_user.brand_colour or "", "logo_url": current_user.logo_url or "",
        "zoom_user": current_user.zoom_user_email or current_user.zoom_user_id or "",
        "slug": current_user.slug or "", "bio": current_user.bio or "",
    }  # fmt: skip
    page = render_template(
        "dashboard/profile.html", values=values, errors=errors, timezones=all_timezones(), creator=current_user,
        languages=LANGUAGE_NAMES,
    )  # fmt: skip
    return page, status


@bp.get("/")
def index():
    return render_template("dashboard/index.html", dashboard=creator_dashboard(current_user))


def _code_form_to_fields(form, sessions: list[LiveSession]) -> tuple[dict, dict[str, str]]:
    """The codes form as the service takes it: numbers as numbers, the amount off typed as people write it ('5.00') in
    minor units of the chosen session's currency (or the one chosen for all sessions)."""
    names = ("code", "percent_off", "amount_off", "currency", "session_id", "max_uses", "starts_at", "expires_at")
    raw = {name: form.get(name, "").strip()[:200] or None for name in names}
    errors: dict[str, str] = {}
    for name in ("percent_off", "max_uses", "session_id"):
        if raw[name]:
            raw[name] = _whole_number(raw[name])
    session = next((s for s in sessions if s.id == raw["session_id"]), None)
    if session is not None:
        raw["currency"] = None  # the session's
    elif raw["currency"]:
        try:
            raw["currency"] = normalize_currency(raw["currency"])
        except MoneyError:
            pass  # refused by the service
    if raw["amount_off"]:
        currency = session.currency if session else raw["currency"]
        try:
            raw["amount_off"] = to_minor(raw["amount_off"], normalize_currency(currency or ""))
        except MoneyError as error:
            # The text stays, so the service refuses it along with any other mistake.
            errors["amount_off"] = str(error) if currency else _("Choose the currency first.")
    return raw, errors


def _render_codes(values: dict, errors: dict, status: int = 200):
    sessions = creator_sessions(current_user)
    page = render_template(
        "dashboard/discount_codes.html",
        codes=creator_codes(current_user),
        sessions=sessions,
        titles={session.id: session.title for session in sessions},
        values=values,
        errors=errors,
    )
    return page, status


@bp.route("/discount-codes", methods=["GET", "POST"])
def discount_codes():
    if request.method == "GET":
        return _render_codes({"currency": "EUR"}, {})
    raw, errors = _code_form_to_fields(request.form, creator_sessions(current_user))
    try:
        code = create_code(current_user, raw)
    except ValidationError as error:
        return _render_codes(request.form, {**error.fields, **errors} or {"form": error.message}, 422)
    flash(_("Discount code %(code)s created.", code=code.code))
    return redirect(url_for(".discount_codes"))


@bp.post("/discount-codes/<int:code_id>/delete")
def delete_discount_code(code_id: int):
    code = creator_code(current_user, code_id)
    delete_code(code)
    flash(_("Discount code %(code)s deleted: orders that used it keep their discount.", code=code.code))
    return redirect(url_for(".discount_codes"))


@bp.route("/sessions/new", methods=["GET", "POST"])
def new_session():
    if request.method == "GET":
        return _render_form(None, _form_values(None), {})
    raw, errors = _form_to_fields(request.form)
    try:
        session = create_session(current_user, raw)
    except ValidationError as error:
        return _render_form(None, request.form, {**error.fields, **errors}, 422)
    if request.form.get("action") == "publish":
        return _publish(session)
    flash(_("Draft saved. Publish it when you are ready to sell."))
    return redirect(url_for(".session_detail", session_id=session.id))


@bp.route("/sessions/<int:session_id>/edit", methods=["GET", "POST"])
def edit_session(session_id: int):
    session = creator_session(current_user, session_id)
    if request.method == "GET":
        return _render_form(session, _form_values(session), {})
    raw, errors = _form_to_fields(request.form)
    try:
        update_session(session, raw)
    except ValidationError as error:
        return _render_form(session, request.form, {**error.fields, **errors}, 422)
    flash(_("Changes saved."))
    return redirect(url_for(".session_detail", session_id=session.id))


@bp.post("/sessions/<int:session_id>/publish")
def publish(session_id: int):
    return _publish(creator_session(current_user, session_id))


def _publish(session: LiveSession):
    try:
        publish_session(session)
    except EmailNotVerified as error:  # the draft is kept; the page says what to do
        flash(error.message)
        return redirect(url_for(".session_detail", session_id=session.id))
    flash(_("Published: your session is on sale."))
    return redirect(url_for(".session_detail", session_id=session.id))


@bp.get("/sessions/<int:session_id>")
def session_detail(session_id: int):
    session = creator_session(current_user, session_id)
    return render_template(
        "dashboard/session_detail.html",
        session=session,
        orders=session.orders,
        failed_enrollments=failed_enrollments(session),
        join_token=join_token,
        refund_progress=refund_progress(session),
        erasure_date=erasure_date(session),
        retention_days=retention_days(),
    )


@bp.post("/sessions/<int:session_id>/orders/<int:order_id>/retry-enrollment")
def retry_order_enrollment(session_id: int, order_id: int):
    session = creator_session(current_user, session_id)
    order = creator_order(current_user.id, order_id)
    if order.session_id != session.id:
        abort(404)
    retry_enrollment(order)
    flash(_("Enrolment of %(name)s will be tried again within a minute.", name=order.name))
    return redirect(url_for(".session_detail", session_id=session.id))


@bp.post("/sessions/<int:session_id>/retry-enrollments")
def retry_session_enrollments(session_id: int):
    session = creator_session(current_user, session_id)
    count = retry_failed_enrollments(session)
    flash(_("%(n)d enrolments will be tried again within a minute.", n=count))
    return redirect(url_for(".session_detail", session_id=session.id))


def _render_order(
    order, values: dict | None = None, errors: dict | None = None, status: int = 200, erase_error: str | None = None
):
    refunded = refunded_so_far(order)
    refundable = order.amount - refunded if order.status == "paid" and order.payment_ref else 0
    page = render_template(
        "dashboard/order.html",
        order=order,
        refunded=refunded,
        refundable=refundable,
        values=values or {},  # typed, never prefilled: a refund of everything is a choice, not a default
        errors=errors or {},
        idempotency_key=secrets.token_urlsafe(24),
        attendee_orders=attendee_orders(order),
        erase_error=erase_error,
    )
    return page, status


@bp.get("/orders/<int:order_id>")
def order_detail(order_id: int):
    return _render_order(creator_order(current_user.id, order_id))


@bp.post("/orders/<int:order_id>/refund")
def refund_order(order_id: int):
    order = creator_order(current_user.id, order_id)
    try:
        amount = to_minor(request.form.get("amount", ""), order.currency)
    except MoneyError as error:
        return _render_order(order, request.form, {"amount": str(error)}, 422)
    if request.form.get("confirm") != "yes":
        try:
            preview = preview_refund(order, amount)
        except ServiceError as error:
            return _render_order(order, request.form, error.fields or {"form": error.message}, error.http_status)
        page = render_template(
            "dashboard/refund_confirm.html", order=order, preview=preview,
            amount_value=major_input_value(amount, order.currency), idempotency_key=request.form.get("idempotency_key"),
        )  # fmt: skip
        return page
    try:
        refund, _created = refund_order_service(
            order, amount, actor=f"creator {current_user.email}", key=request.form.get("idempotency_key") or None
        )
    except ServiceError as error:
        order = creator_order(current_user.id, order_id)
        errors = error.fields or {"form": error.message}
        return _render_order(order, request.form, errors, error.http_status)
    amount = money(refund.amount, refund.currency)
    if refund.status == "succeeded":
        flash(_("Refunded %(amount)s.", amount=amount))
    else:
        flash(_("Refund of %(amount)s sent; %(name)s is still processing it.", amount=amount, name=refund.provider))
    return redirect(url_for(".order_detail", order_id=order_id))


@bp.get("/sessions/<int:session_id>/cancel")
def confirm_cancel(session_id: int):
    """Who is refunded and who is emailed, for the creator to confirm before the session is cancelled."""
    session = creator_session(current_user, session_id)
    if session.status not in ("draft", "published") or session.has_started():
        return redirect(url_for(".session_detail", session_id=session.id))
    return render_template("dashboard/cancel_confirm.html", session=session, preview=preview_cancellation(session))


@bp.post("/sessions/<int:session_id>/cancel")
def cancel(session_id: int):
    session = creator_session(current_user, session_id)
    if request.form.get("confirm") != "yes":
        flash(_("Tick the box to confirm the cancellation."))
        return redirect(url_for(".confirm_cancel", session_id=session.id))
    count = cancel_session(session, actor=f"creator {current_user.email}")
    flash(_("Session cancelled. %(n)d attendees are being refunded and told by email.", n=count))
    return redirect(url_for(".session_detail", session_id=session.id))


@bp.post("/orders/<int:order_id>/refunds/<int:refund_id>/retry")
def retry_failed_refund(order_id: int, refund_id: int):
    order = creator_order(current_user.id, order_id)
    refund = next((r for r in order.refunds if r.id == refund_id), None)
    if refund is None:
        abort(404)
    retry_refund(refund)
    flash(_("The refund will be sent again within a minute."))
    back = request.form.get("next", "")
    if not back.startswith("/dashboard/") or "//" in back:  # our own pages only
        back = url_for(".order_detail", order_id=order.id)
    return redirect(back)


@bp.get("/orders/<int:order_id>/export")
def export_order(order_id: int):
    """Everything held about the order's attendee, as a JSON download."""
    order = creator_order(current_user.id, order_id)
    response = current_app.response_class(export_json(order), mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="attendee-data-order-{order.id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/orders/<int:order_id>/erase")
def erase_order(order_id: int):
    order = creator_order(current_user.id, order_id)
    if request.form.get("confirm") != "yes":
        return _render_order(order, status=422, erase_error=_("Tick the box to confirm the erasure."))
    try:
        erased = erase_attendee(order, actor=f"creator {current_user.email}")
    except ServiceError as error:
        return _render_order(order, status=error.http_status, erase_error=error.message)
    if erased:
        flash(ngettext("The attendee's personal data was erased (%(num)d order).",
                       "The attendee's personal data was erased (%(num)d orders).", len(erased)))  # fmt: skip
    else:
        flash(_("This attendee's personal data had been erased already."))
    return redirect(url_for(".order_detail", order_id=order.id))
